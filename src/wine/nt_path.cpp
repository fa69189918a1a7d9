#include "wine/nt_path.hpp"

namespace pss::wine {

std::string nt_path(const std::filesystem::path& unix_path) {
  std::filesystem::path abs =
      unix_path.is_absolute() ? unix_path : std::filesystem::absolute(unix_path);
  std::string out = "Z:";
  for (char c : abs.native()) {
    out.push_back(c == '/' ? '\\' : c);
  }
  return out;
}

} // namespace pss::wine

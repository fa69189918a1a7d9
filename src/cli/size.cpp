#include "cli/size.hpp"

#include "util/posix.hpp"

namespace pss::cli {

Result<std::uint64_t> parse_size(const std::string& s) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    return make_error("invalid size " + quote(s) + " (e.g. 100M, 2G, 4096)");
  }
  std::string unit = s.substr(pos);
  std::uint64_t mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") {
    mult = 1ULL << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = 1ULL << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = 1ULL << 30;
  } else if (!unit.empty()) {
    return make_error("invalid size " + quote(s) + " (e.g. 100M, 2G, 4096)");
  }
  return v * mult;
}

} // namespace pss::cli

#include "util/posix.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace pss {

void UniqueFd::reset(int fd) {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
  m_fd = fd;
}

Error errno_error(std::string_view what, const std::filesystem::path& path) {
  int err = errno;
  return make_error(std::string(what) + " " + quote(path.native()) + ": " + std::strerror(err));
}

Error errno_error(std::string_view what) {
  int err = errno;
  return make_error(std::string(what) + ": " + std::strerror(err));
}

std::string quote(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\'') {
      out += "\\'";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char k_hex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out += "'";
  return out;
}

} // namespace pss

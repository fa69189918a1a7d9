#include "util/percent.hpp"

#include "util/hex.hpp"

namespace pss {

std::string shown_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) {
    return std::string(1, c);
  }
  static constexpr char k_hex[] = "0123456789abcdef";
  return std::string("\\x") + k_hex[u >> 4] + k_hex[u & 0xf];
}

Error truncated_percent_escape(std::size_t offset) {
  return make_error("truncated percent-escape at offset " + std::to_string(offset));
}

Error invalid_percent_escape(char hi, char lo, std::size_t offset) {
  return make_error("invalid percent-escape '%" + shown_char(hi) + shown_char(lo) + "' at offset " +
                    std::to_string(offset));
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (s.size() - i < 3) { // fewer than two characters follow the '%'
      return truncated_percent_escape(i);
    }
    int hi = hex_value(s[i + 1]);
    int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return invalid_percent_escape(s[i + 1], s[i + 2], i);
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return out;
}

} // namespace pss

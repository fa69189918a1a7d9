#include "util/hex.hpp"

namespace pss {

std::string to_hex(std::string_view bytes) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(k_hex[c >> 4]);
    out.push_back(k_hex[c & 0xf]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

Result<std::string> from_hex(std::string_view digits) {
  if (digits.size() % 2 != 0) {
    return make_error("odd number of hex digits");
  }
  std::string out;
  out.reserve(digits.size() / 2);
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    int hi = hex_value(digits[i]);
    int lo = hex_value(digits[i + 1]);
    if (hi < 0 || lo < 0) {
      return make_error("not a hex digit at offset " + std::to_string(i));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

} // namespace pss

#include "util/uuid.hpp"

#include <random>

namespace pss {

std::string uuid4() {
  // One device per thread: std::random_device is not safe to share between threads.
  thread_local std::random_device device;
  std::array<std::uint8_t, 16> bytes{};
  for (std::size_t i = 0; i < bytes.size(); i += 4) {
    const auto word = static_cast<std::uint32_t>(device());
    for (std::size_t k = 0; k < 4; ++k) {
      bytes[i + k] = static_cast<std::uint8_t>(word >> (8 * k));
    }
  }
  return uuid4_from_bytes(bytes);
}

std::string uuid4_from_bytes(std::array<std::uint8_t, 16> bytes) {
  constexpr std::string_view k_hex = "0123456789abcdef";
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x40); // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80); // variant RFC 4122
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out += '-';
    }
    out += k_hex[bytes[i] >> 4];
    out += k_hex[bytes[i] & 0x0f];
  }
  return out;
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') {
        return false;
      }
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

} // namespace pss

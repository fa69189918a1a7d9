#include "util/base64.hpp"

#include <array>
#include <cstdint>
#include <fmt/format.h>

namespace pss {

namespace {

constexpr std::string_view k_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::int8_t k_invalid = -1;

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  t.fill(k_invalid);
  for (std::size_t i = 0; i < k_alphabet.size(); ++i) {
    t[static_cast<unsigned char>(k_alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return t;
}

constexpr std::array<std::int8_t, 256> k_table = make_table();

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// A byte as it appears in an error message: 'x' when printable, else 0xNN.
std::string shown(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 0x20 && u < 0x7f) ? fmt::format("'{}'", c) : fmt::format("0x{:02x}", u);
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto at = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += k_alphabet[n >> 6 & 63];
    out += k_alphabet[n & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t n = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += rest == 2 ? k_alphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;   // the 6-bit values of the current quantum
  std::size_t count = 0;   // characters in the current quantum, '=' included
  std::size_t padding = 0; // '=' in the current quantum
  bool done = false;       // a padded quantum ended the data
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (is_space(c)) {
      continue;
    }
    if (done) {
      return make_error(
          fmt::format("invalid base64: character {} after padding at offset {}", shown(c), i));
    }
    if (c == '=') {
      if (count < 2) { // "=xxx" and "x=xx" are not padding
        return make_error(fmt::format("invalid base64: unexpected '=' at offset {}", i));
      }
      ++padding;
    } else {
      const std::int8_t v = k_table[static_cast<unsigned char>(c)];
      if (v == k_invalid) {
        return make_error(fmt::format("invalid base64: character {} at offset {}", shown(c), i));
      }
      if (padding > 0) {
        return make_error(
            fmt::format("invalid base64: character {} after padding at offset {}", shown(c), i));
      }
      acc |= static_cast<std::uint32_t>(v) << (6 * (3 - count));
    }
    if (++count == 4) {
      out += static_cast<char>(acc >> 16 & 0xff);
      if (padding < 2) {
        out += static_cast<char>(acc >> 8 & 0xff);
      }
      if (padding < 1) {
        out += static_cast<char>(acc & 0xff);
      }
      done = padding > 0;
      acc = 0;
      count = 0;
      padding = 0;
    }
  }
  if (count != 0) {
    return make_error(fmt::format("invalid base64: the last group has {} of 4 characters "
                                  "(truncated, or padding missing)",
                                  count));
  }
  return out;
}

} // namespace pss

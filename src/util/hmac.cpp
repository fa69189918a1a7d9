#include "util/hmac.hpp"

#include "util/error.hpp"

#include <array>
#include <cstdint>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace pss {

namespace {

constexpr std::size_t k_mac_size = 32; // SHA-256

using Mac = std::array<unsigned char, k_mac_size>;

Mac hmac_sha256(std::string_view key, std::string_view data) {
  // A non-null key pointer even when the key is empty: some OpenSSL versions read a null key
  // as "reuse the previous key" and fail.
  static const unsigned char k_empty = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&k_empty) : key.data();
  static const unsigned char k_empty_data = 0;
  const auto* data_ptr =
      data.empty() ? &k_empty_data : reinterpret_cast<const unsigned char*>(data.data());
  Mac mac{};
  unsigned int len = 0;
  if (::HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), mac.data(),
             &len) == nullptr ||
      len != k_mac_size) {
    throw Fatal("OpenSSL: cannot compute HMAC-SHA256");
  }
  return mac;
}

// The value of one hex digit, and whether it is one, without branching on the digit: the
// given signature is not secret, but there is no reason to make its decoding time vary either.
std::uint32_t hex_value(unsigned char ch, std::uint32_t& invalid) {
  auto c = static_cast<std::int32_t>(ch);
  std::int32_t digit = c - '0';
  std::int32_t letter = (c | 0x20) - 'a'; // 'A'..'F' and 'a'..'f' → 0..5
  auto is_digit = static_cast<std::uint32_t>((digit >= 0) & (digit <= 9));
  auto is_letter = static_cast<std::uint32_t>((letter >= 0) & (letter <= 5));
  invalid |= (is_digit | is_letter) ^ 1U;
  // Exactly one mask is all ones for a valid digit; both are zero otherwise.
  std::uint32_t digit_mask = 0U - is_digit;
  std::uint32_t letter_mask = 0U - is_letter;
  return (static_cast<std::uint32_t>(digit) & digit_mask) |
         (static_cast<std::uint32_t>(letter + 10) & letter_mask);
}

} // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  Mac mac = hmac_sha256(key, data);
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * k_mac_size);
  for (unsigned char b : mac) {
    out.push_back(k_hex[b >> 4]);
    out.push_back(k_hex[b & 0xf]);
  }
  return out;
}

bool signature_matches(std::string_view key, std::string_view body, std::string_view given_hex) {
  if (given_hex.size() != 2 * k_mac_size) {
    return false; // the length of a valid signature is public: no secret in refusing early
  }
  Mac given{};
  std::uint32_t invalid = 0;
  for (std::size_t i = 0; i < k_mac_size; ++i) {
    std::uint32_t hi = hex_value(static_cast<unsigned char>(given_hex[2 * i]), invalid);
    std::uint32_t lo = hex_value(static_cast<unsigned char>(given_hex[2 * i + 1]), invalid);
    given[i] = static_cast<unsigned char>((hi << 4) | lo);
  }
  Mac expected = hmac_sha256(key, body);
  int differs = CRYPTO_memcmp(expected.data(), given.data(), k_mac_size);
  return (static_cast<std::uint32_t>(differs != 0) | invalid) == 0;
}

} // namespace pss

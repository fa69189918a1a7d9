// HMAC-SHA256 (OpenSSL) for signing and verifying webhook bodies (X-POLYSWARM-SIGNATURE).
#pragma once

#include <string>
#include <string_view>

namespace pss {

// HMAC-SHA256 of `data` keyed by `key`, as 64 lowercase hex digits. Any key length, including
// empty. Throws Fatal if OpenSSL fails (it does not for SHA-256).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// True when `given_hex` is the HMAC-SHA256 of `body` keyed by `key`: 64 hex digits, either
// case, nothing else (no "sha256=" prefix, no whitespace). The MACs are compared over their
// 32 raw bytes with CRYPTO_memcmp, so the time taken does not depend on how many bytes match;
// a wrong length is refused at once (the length is public), and the digits of a well-sized
// value are all decoded before anything is decided. Verify over the raw received bytes,
// before parsing them.
bool signature_matches(std::string_view key, std::string_view body, std::string_view given_hex);

} // namespace pss

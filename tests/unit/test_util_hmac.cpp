#include "util/hmac.hpp"

#include <cctype>
#include <doctest/doctest.h>
#include <string>

namespace {

std::string bytes(std::size_t n, unsigned char b) {
  return std::string(n, static_cast<char>(b));
}

std::string upper(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

} // namespace

TEST_CASE("util::hmac_sha256_hex") {
  using pss::hmac_sha256_hex;
  // RFC 4231, section 4: the HMAC-SHA-256 test vectors.
  SUBCASE("RFC 4231 test case 1") {
    CHECK(hmac_sha256_hex(bytes(20, 0x0b), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  }
  SUBCASE("RFC 4231 test case 2: a key shorter than the output") {
    CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
  SUBCASE("RFC 4231 test case 3") {
    CHECK(hmac_sha256_hex(bytes(20, 0xaa), bytes(50, 0xdd)) ==
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  }
  SUBCASE("RFC 4231 test case 4") {
    std::string key;
    for (int i = 1; i <= 25; ++i) {
      key.push_back(static_cast<char>(i));
    }
    CHECK(hmac_sha256_hex(key, bytes(50, 0xcd)) ==
          "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  }
  SUBCASE("RFC 4231 test case 5: the first 128 bits") {
    CHECK(hmac_sha256_hex(bytes(20, 0x0c), "Test With Truncation").substr(0, 32) ==
          "a3b6167473100ee06e0c796c2955552b");
  }
  SUBCASE("RFC 4231 test case 6: a key larger than the block size") {
    CHECK(hmac_sha256_hex(bytes(131, 0xaa),
                          "Test Using Larger Than Block-Size Key - Hash Key First") ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  }
  SUBCASE("RFC 4231 test case 7: key and data larger than the block size") {
    CHECK(hmac_sha256_hex(bytes(131, 0xaa),
                          "This is a test using a larger than block-size key and a larger than "
                          "block-size data. The key needs to be hashed before being used by the "
                          "HMAC algorithm.") ==
          "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  }
  SUBCASE("empty key and data") {
    // Python: hmac.new(b"", b"", hashlib.sha256).hexdigest()
    CHECK(hmac_sha256_hex("", "") ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  }
  SUBCASE("GitHub's webhook example") {
    CHECK(hmac_sha256_hex("It's a Secret to Everybody", "Hello, World!") ==
          "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  }
  SUBCASE("NUL bytes are data") {
    std::string with_nul("a\0b", 3);
    CHECK(hmac_sha256_hex("k", with_nul) != hmac_sha256_hex("k", "a"));
    CHECK(hmac_sha256_hex(std::string("k\0x", 3), "a") != hmac_sha256_hex("k", "a"));
    // HMAC pads the key with zeros to the block size: trailing NULs make no difference.
    CHECK(hmac_sha256_hex(std::string("k\0", 2), "a") == hmac_sha256_hex("k", "a"));
  }
}

TEST_CASE("util::signature_matches") {
  using pss::signature_matches;
  const std::string key = "It's a Secret to Everybody";
  const std::string body = "Hello, World!";
  const std::string sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

  SUBCASE("the right signature, in either case") {
    CHECK(signature_matches(key, body, sig));
    CHECK(signature_matches(key, body, upper(sig)));
    std::string mixed = sig;
    mixed[6] = 'E'; // "757107ea..." → "757107Ea..."
    CHECK(signature_matches(key, body, mixed));
  }
  SUBCASE("a different body, key or digit") {
    CHECK_FALSE(signature_matches(key, "Hello, World?", sig));
    CHECK_FALSE(signature_matches("It's a secret to everybody", body, sig));
    for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
      std::string wrong = sig;
      wrong[i] = wrong[i] == '0' ? '1' : '0';
      CHECK_FALSE(signature_matches(key, body, wrong));
    }
  }
  SUBCASE("wrong lengths") {
    CHECK_FALSE(signature_matches(key, body, ""));
    CHECK_FALSE(signature_matches(key, body, sig.substr(0, 63)));
    CHECK_FALSE(signature_matches(key, body, sig + "0"));
    CHECK_FALSE(signature_matches(key, body, "sha256=" + sig));
    CHECK_FALSE(signature_matches(key, body, sig + "\n"));
  }
  SUBCASE("non-hex characters of the right length") {
    for (char bad : {'g', 'G', ' ', '\0', ':', '/', '@', '`', '\xff'}) {
      std::string wrong = sig;
      wrong[10] = bad;
      CHECK_FALSE(signature_matches(key, body, wrong));
    }
    // 'u' is 'e' + 0x10: a decoder that only masked bits could take one for the other.
    std::string wrong = sig;
    wrong[6] = 'u';
    CHECK_FALSE(signature_matches(key, body, wrong));
  }
  SUBCASE("an empty key and body") {
    CHECK(signature_matches("", "",
                            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"));
  }
}

#include "unit/support.hpp"
#include "util/base64.hpp"

#include <doctest/doctest.h>
#include <string>

using pss::test::error_of;

TEST_CASE("util::base64_encode") {
  SUBCASE("RFC 4648 test vectors") {
    CHECK(pss::base64_encode("") == "");
    CHECK(pss::base64_encode("f") == "Zg==");
    CHECK(pss::base64_encode("fo") == "Zm8=");
    CHECK(pss::base64_encode("foo") == "Zm9v");
    CHECK(pss::base64_encode("foob") == "Zm9vYg==");
    CHECK(pss::base64_encode("fooba") == "Zm9vYmE=");
    CHECK(pss::base64_encode("foobar") == "Zm9vYmFy");
  }
  SUBCASE("the standard alphabet, with + and /") {
    CHECK(pss::base64_encode(std::string("\xfb\xff\xbf", 3)) == "+/+/");
    CHECK(pss::base64_encode(std::string("\0\0\0", 3)) == "AAAA");
  }
  SUBCASE("a Celery body, as Python's b64encode wrote it") {
    CHECK(pss::base64_encode(R"([[{"a": 1}], {}, {"callbacks": null, "errbacks": null, )"
                             R"("chain": null, "chord": null}])") ==
          "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFp"
          "biI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==");
  }
}

TEST_CASE("util::base64_decode") {
  SUBCASE("RFC 4648 test vectors") {
    CHECK(pss::base64_decode("").value() == "");
    CHECK(pss::base64_decode("Zg==").value() == "f");
    CHECK(pss::base64_decode("Zm8=").value() == "fo");
    CHECK(pss::base64_decode("Zm9v").value() == "foo");
    CHECK(pss::base64_decode("Zm9vYg==").value() == "foob");
    CHECK(pss::base64_decode("Zm9vYmE=").value() == "fooba");
    CHECK(pss::base64_decode("Zm9vYmFy").value() == "foobar");
  }
  SUBCASE("every byte value round-trips") {
    std::string all;
    for (int i = 0; i < 256; ++i) {
      all += static_cast<char>(i);
    }
    for (std::size_t n = 0; n <= all.size(); n += 37) {
      const std::string bytes = all.substr(0, n) + all.substr(0, n % 3);
      CHECK(pss::base64_decode(pss::base64_encode(bytes)).value() == bytes);
    }
  }
  SUBCASE("whitespace and line breaks are skipped") {
    CHECK(pss::base64_decode(" Zm9v\r\nYmFy\n").value() == "foobar");
    CHECK(pss::base64_decode("Zm9vYg=\n=").value() == "foob");
  }
  SUBCASE("unused bits of the last character are ignored, as Python does") {
    CHECK(pss::base64_decode("Zh==").value() == "f");
  }
  SUBCASE("a character outside the alphabet is named with its offset") {
    CHECK(error_of(pss::base64_decode("Zm9v!mFy")) == "invalid base64: character '!' at offset 4");
    CHECK(error_of(pss::base64_decode("Zm9v-_Fy")) ==
          "invalid base64: character '-' at offset 4"); // not the URL-safe alphabet
    CHECK(error_of(pss::base64_decode(std::string("Zm\x01v", 4))) ==
          "invalid base64: character 0x01 at offset 2");
  }
  SUBCASE("missing padding or a truncated text") {
    CHECK(error_of(pss::base64_decode("Zg")) ==
          "invalid base64: the last group has 2 of 4 characters (truncated, or padding missing)");
    CHECK(error_of(pss::base64_decode("Zm9vY")).find("1 of 4") != std::string::npos);
    CHECK(error_of(pss::base64_decode("Zg=")).find("3 of 4") != std::string::npos);
  }
  SUBCASE("misplaced padding") {
    CHECK(error_of(pss::base64_decode("=Zm9")) == "invalid base64: unexpected '=' at offset 0");
    CHECK(error_of(pss::base64_decode("Z=m9")) == "invalid base64: unexpected '=' at offset 1");
    CHECK(error_of(pss::base64_decode("Zm=v")) ==
          "invalid base64: character 'v' after padding at offset 3");
    CHECK(error_of(pss::base64_decode("Zg==Zg==")) ==
          "invalid base64: character 'Z' after padding at offset 4");
  }
}

#include "util/hex.hpp"

TEST_CASE("hex: both ways, either case, errors with the offset") {
  CHECK(pss::to_hex(std::string("\x01\xab\xff", 3)) == "01abff");
  CHECK(*pss::from_hex("01ABff") == std::string("\x01\xab\xff", 3));
  CHECK(pss::hex_value('g') == -1);
  auto odd = pss::from_hex("abc");
  REQUIRE_FALSE(odd.has_value());
  CHECK(odd.error().message == "odd number of hex digits");
  auto bad = pss::from_hex("00zz");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "not a hex digit at offset 2");
}

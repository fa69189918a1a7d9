#include "util/text.hpp"

#include <cstddef>
#include <doctest/doctest.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_view_literals;
using pss::text::Encoding;

namespace {

// Independent strict decoder for the tests: the code points of s, or nullopt if s is not
// well-formed UTF-8 (Unicode Table 3-7).
std::optional<std::vector<char32_t>> code_points(std::string_view s) {
  std::vector<char32_t> cps;
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto in = [](unsigned char b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  while (i < s.size()) {
    const unsigned char b0 = at(i);
    if (b0 < 0x80) {
      cps.push_back(b0);
      i += 1;
    } else if (in(b0, 0xC2, 0xDF) && i + 1 < s.size() && in(at(i + 1), 0x80, 0xBF)) {
      cps.push_back(((b0 & 0x1Fu) << 6) | (at(i + 1) & 0x3Fu));
      i += 2;
    } else if (in(b0, 0xE0, 0xEF) && i + 2 < s.size() &&
               in(at(i + 1), b0 == 0xE0 ? 0xA0 : 0x80, b0 == 0xED ? 0x9F : 0xBF) &&
               in(at(i + 2), 0x80, 0xBF)) {
      cps.push_back(((b0 & 0x0Fu) << 12) | ((at(i + 1) & 0x3Fu) << 6) | (at(i + 2) & 0x3Fu));
      i += 3;
    } else if (in(b0, 0xF0, 0xF4) && i + 3 < s.size() &&
               in(at(i + 1), b0 == 0xF0 ? 0x90 : 0x80, b0 == 0xF4 ? 0x8F : 0xBF) &&
               in(at(i + 2), 0x80, 0xBF) && in(at(i + 3), 0x80, 0xBF)) {
      cps.push_back(((b0 & 0x07u) << 18) | ((at(i + 1) & 0x3Fu) << 12) |
                    ((at(i + 2) & 0x3Fu) << 6) | (at(i + 3) & 0x3Fu));
      i += 4;
    } else {
      return std::nullopt;
    }
  }
  return cps;
}

const std::string fffd = "\xEF\xBF\xBD";

} // namespace

TEST_CASE("util::text") {
  SUBCASE("parse_encoding and to_string") {
    CHECK(pss::text::parse_encoding("utf-8") == Encoding::utf8);
    CHECK(pss::text::parse_encoding("UTF8") == Encoding::utf8);
    CHECK(pss::text::parse_encoding("cp1252") == Encoding::cp1252);
    CHECK(pss::text::parse_encoding("Windows-1252") == Encoding::cp1252);
    CHECK(pss::text::parse_encoding("UTF-16LE") == Encoding::utf16le);
    CHECK(pss::text::parse_encoding("utf16le") == Encoding::utf16le);
    CHECK(pss::text::parse_encoding("Detect") == Encoding::detect);
    CHECK(!pss::text::parse_encoding("latin1"));
    CHECK(!pss::text::parse_encoding(""));
    CHECK(!pss::text::parse_encoding("utf-16"));
    for (Encoding e : {Encoding::utf8, Encoding::cp1252, Encoding::utf16le, Encoding::detect}) {
      CHECK(pss::text::parse_encoding(pss::text::to_string(e)) == e);
    }
  }

  SUBCASE("cp1252_to_utf8 known bytes") {
    CHECK(pss::text::cp1252_to_utf8("caf\xE9") == "caf\xC3\xA9");
    CHECK(pss::text::cp1252_to_utf8("\x80") == "\xE2\x82\xAC");
    CHECK(pss::text::cp1252_to_utf8("\x96") == "\xE2\x80\x93");
    CHECK(pss::text::cp1252_to_utf8("\x9C") == "\xC5\x93");
    CHECK(pss::text::cp1252_to_utf8("\xFC") == "\xC3\xBC");
    CHECK(pss::text::cp1252_to_utf8("\x9F") == "\xC5\xB8");     // Ÿ U+0178
    CHECK(pss::text::cp1252_to_utf8("\x99") == "\xE2\x84\xA2"); // ™ U+2122
    CHECK(pss::text::cp1252_to_utf8("\xA0") == "\xC2\xA0");
    CHECK(pss::text::cp1252_to_utf8("\xFF") == "\xC3\xBF");
    CHECK(pss::text::cp1252_to_utf8("plain ASCII\r\n") == "plain ASCII\r\n");
    CHECK(pss::text::cp1252_to_utf8("") == "");
    CHECK(pss::text::cp1252_to_utf8("a\0b"sv) == "a\0b"sv);
  }

  SUBCASE("cp1252_to_utf8 undefined bytes become U+FFFD") {
    for (char b : {'\x81', '\x8D', '\x8F', '\x90', '\x9D'}) {
      CHECK(pss::text::cp1252_to_utf8(std::string(1, b)) == fffd);
    }
  }

  SUBCASE("cp1252_to_utf8 maps every byte to one valid code point") {
    std::string all;
    for (int b = 0; b < 256; ++b) {
      const std::string out = pss::text::cp1252_to_utf8(std::string(1, static_cast<char>(b)));
      auto cps = code_points(out);
      REQUIRE(cps);
      REQUIRE(cps->size() == 1);
      if (b < 0x80 || b >= 0xA0) {
        CHECK((*cps)[0] == static_cast<char32_t>(b));
      } else {
        CHECK((*cps)[0] >= 0x100); // 0x80–0x9F: never a C1 control
      }
      CHECK(pss::text::is_valid_utf8(out));
      all.push_back(static_cast<char>(b));
    }
    const std::string out = pss::text::cp1252_to_utf8(all);
    auto cps = code_points(out);
    REQUIRE(cps);
    CHECK(cps->size() == 256);
  }

  SUBCASE("utf16le_to_utf8") {
    CHECK(pss::text::utf16le_to_utf8("\xFF\xFEH\0i\0"sv) == "Hi");
    CHECK(pss::text::utf16le_to_utf8("H\0i\0"sv) == "Hi");
    CHECK(pss::text::utf16le_to_utf8("\xFF\xFE"sv) == "");
    CHECK(pss::text::utf16le_to_utf8("") == "");
    CHECK(pss::text::utf16le_to_utf8("c\0a\0f\0\xE9\0"sv) == "caf\xC3\xA9");
    CHECK(pss::text::utf16le_to_utf8("\xAC\x20"sv) == "\xE2\x82\xAC");
    CHECK(pss::text::utf16le_to_utf8("\0\0"sv) == "\0"sv);
    // U+1F600 as a surrogate pair.
    CHECK(pss::text::utf16le_to_utf8("\xFF\xFE\x3D\xD8\x00\xDE"sv) == "\xF0\x9F\x98\x80");
    CHECK(pss::text::utf16le_to_utf8("\x3D\xD8\x00\xDE!\0"sv) == "\xF0\x9F\x98\x80!");
    // Unpaired surrogates: high then a non-surrogate, high at the end, lone low, high high low.
    CHECK(pss::text::utf16le_to_utf8("\x3D\xD8\x41\x00"sv) == fffd + "A");
    CHECK(pss::text::utf16le_to_utf8("A\0\x3D\xD8"sv) == "A" + fffd);
    CHECK(pss::text::utf16le_to_utf8("\x00\xDE\x41\x00"sv) == fffd + "A");
    CHECK(pss::text::utf16le_to_utf8("\x3D\xD8\x3D\xD8\x00\xDE"sv) == fffd + "\xF0\x9F\x98\x80");
    // A trailing odd byte.
    CHECK(pss::text::utf16le_to_utf8("A\0B"sv) == "A" + fffd);
    CHECK(pss::text::utf16le_to_utf8("\xFF\xFE"
                                     "A"sv) == fffd);
    CHECK(pss::text::utf16le_to_utf8("\x3D\xD8\x00"sv) == fffd + fffd);
  }

  SUBCASE("is_valid_utf8") {
    CHECK(pss::text::is_valid_utf8(""));
    CHECK(pss::text::is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
    CHECK(pss::text::is_valid_utf8("\xF4\x8F\xBF\xBF")); // U+10FFFF
    CHECK(pss::text::is_valid_utf8("\xED\x9F\xBF"));     // U+D7FF
    CHECK(pss::text::is_valid_utf8("\xEE\x80\x80"));     // U+E000
    CHECK(!pss::text::is_valid_utf8("\xC0\x80"));
    CHECK(!pss::text::is_valid_utf8("\xE0\x9F\xBF"));
    CHECK(!pss::text::is_valid_utf8("\xED\xA0\x80"));
    CHECK(!pss::text::is_valid_utf8("\xF4\x90\x80\x80"));
    CHECK(!pss::text::is_valid_utf8("\xE2\x82"));
    CHECK(!pss::text::is_valid_utf8("\x80"));
    CHECK(!pss::text::is_valid_utf8("\xFF"));
    CHECK(!pss::text::is_valid_utf8("caf\xE9"));
  }

  SUBCASE("sanitize_utf8 keeps valid UTF-8") {
    const std::string valid = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF\r\n";
    CHECK(pss::text::sanitize_utf8(valid) == valid);
    CHECK(pss::text::sanitize_utf8("") == "");
    CHECK(pss::text::sanitize_utf8("a\0b"sv) == "a\0b"sv);
    CHECK(pss::text::sanitize_utf8("\xEF\xBB\xBFhi") == "hi");
    CHECK(pss::text::sanitize_utf8("\xEF\xBB\xBF") == "");
    CHECK(pss::text::sanitize_utf8("a\xEF\xBB\xBF") == "a\xEF\xBB\xBF"); // only a leading BOM
  }

  SUBCASE("sanitize_utf8 replaces each invalid sequence with one U+FFFD") {
    CHECK(pss::text::sanitize_utf8("\xC0\x80") == fffd);         // overlong NUL
    CHECK(pss::text::sanitize_utf8("\xE0\x9F\xBF") == fffd);     // overlong U+07FF
    CHECK(pss::text::sanitize_utf8("\xF0\x8F\xBF\xBF") == fffd); // overlong U+FFFF
    CHECK(pss::text::sanitize_utf8("\xED\xA0\x80") == fffd);     // surrogate U+D800
    CHECK(pss::text::sanitize_utf8("\xF4\x90\x80\x80") == fffd); // U+110000
    CHECK(pss::text::sanitize_utf8("\xE2\x82") == fffd);         // truncated at the end
    CHECK(pss::text::sanitize_utf8("\xE2\x82"
                                   "A") == fffd + "A"); // truncated before ASCII
    CHECK(pss::text::sanitize_utf8("\xE2\xE2\x82\xAC") == fffd + "\xE2\x82\xAC");
    CHECK(pss::text::sanitize_utf8("a\x80\x80z") == "a" + fffd + fffd + "z"); // stray bytes
    CHECK(pss::text::sanitize_utf8("\xFF\xFE") == fffd + fffd);
    CHECK(pss::text::sanitize_utf8("caf\xE9!") == "caf" + fffd + "!");
    CHECK(pss::text::sanitize_utf8("x\xC0\x80y\xED\xA0\x80z") == "x" + fffd + "y" + fffd + "z");
    CHECK(pss::text::sanitize_utf8("\xEF\xBB\xBF\xC0\x80") == fffd);
    // Every result is valid.
    for (int b = 0x80; b < 0x100; ++b) {
      const std::string in = std::string(1, static_cast<char>(b)) + "\x80\x80x";
      CHECK(code_points(pss::text::sanitize_utf8(in)));
    }
  }

  SUBCASE("detect_encoding") {
    CHECK(pss::text::detect_encoding("\xFF\xFEH\0i\0"sv) == Encoding::utf16le);
    CHECK(pss::text::detect_encoding("\xFF\xFE"sv) == Encoding::utf16le);
    CHECK(pss::text::detect_encoding("\xEF\xBB\xBFhi") == Encoding::utf8);
    CHECK(pss::text::detect_encoding("\xEF\xBB\xBF\xE9") == Encoding::utf8); // BOM wins
    CHECK(pss::text::detect_encoding("O\0K\0\r\0\n\0"sv) == Encoding::utf16le);
    CHECK(pss::text::detect_encoding("c\0a\0f\0\xE9\0"sv) == Encoding::utf16le);
    CHECK(pss::text::detect_encoding("OK\r\n") == Encoding::utf8);
    CHECK(pss::text::detect_encoding("caf\xC3\xA9") == Encoding::utf8);
    CHECK(pss::text::detect_encoding("") == Encoding::utf8);
    CHECK(pss::text::detect_encoding("caf\xE9") == Encoding::cp1252);
    CHECK(pss::text::detect_encoding("\x80 5 EUR\r\n") == Encoding::cp1252);
    CHECK(pss::text::detect_encoding("O\0K"sv) == Encoding::utf8);         // odd length
    CHECK(pss::text::detect_encoding("\0\0\0\0\0\0"sv) == Encoding::utf8); // all NUL
    CHECK(pss::text::detect_encoding("a\0b"sv) == Encoding::utf8);         // too short
  }

  SUBCASE("decode") {
    CHECK(pss::text::decode("caf\xE9", Encoding::cp1252) == "caf\xC3\xA9");
    CHECK(pss::text::decode("caf\xE9", Encoding::detect) == "caf\xC3\xA9");
    CHECK(pss::text::decode("caf\xE9", Encoding::utf8) == "caf" + fffd);
    CHECK(pss::text::decode("caf\xC3\xA9", Encoding::detect) == "caf\xC3\xA9");
    CHECK(pss::text::decode("\xEF\xBB\xBF"
                            "caf\xC3\xA9",
                            Encoding::detect) == "caf\xC3\xA9");
    CHECK(pss::text::decode("c\0a\0f\0\xE9\0"sv, Encoding::utf16le) == "caf\xC3\xA9");
    CHECK(pss::text::decode("\xFF\xFE"
                            "c\0a\0f\0\xE9\0"sv,
                            Encoding::detect) == "caf\xC3\xA9");
    CHECK(pss::text::decode("c\0a\0f\0\xE9\0"sv, Encoding::detect) == "caf\xC3\xA9");
  }

  SUBCASE("normalize_newlines") {
    CHECK(pss::text::normalize_newlines("a\r\nb") == "a\nb");
    CHECK(pss::text::normalize_newlines("a\r\r\nb") == "a\nb");
    CHECK(pss::text::normalize_newlines("a\rb") == "a\nb");
    CHECK(pss::text::normalize_newlines("a\r") == "a\n");
    CHECK(pss::text::normalize_newlines("\r\n\r\n") == "\n\n");
    CHECK(pss::text::normalize_newlines("\r\r\n\r\r\n") == "\n\n");
    CHECK(pss::text::normalize_newlines("\r\r") == "\n\n");
    CHECK(pss::text::normalize_newlines("\r\r\r\n") == "\n\n");
    CHECK(pss::text::normalize_newlines("a\nb\n") == "a\nb\n");
    CHECK(pss::text::normalize_newlines("") == "");
    CHECK(pss::text::normalize_newlines("1\r\n2\r\r\n3\r4\n5\r") == "1\n2\n3\n4\n5\n");
    CHECK(pss::text::normalize_newlines("\n\r\n\r") == "\n\n\n");
    CHECK(pss::text::normalize_newlines("caf\xC3\xA9\r\n\xE2\x82\xAC\r") ==
          "caf\xC3\xA9\n\xE2\x82\xAC\n");
  }

  SUBCASE("normalize") {
    CHECK(pss::text::normalize("caf\xE9\r\n\x80\r\r\n", Encoding::cp1252) ==
          "caf\xC3\xA9\n\xE2\x82\xAC\n");
    CHECK(pss::text::normalize("caf\xE9\r\nok\r\n", Encoding::detect) == "caf\xC3\xA9\nok\n");
    CHECK(pss::text::normalize("\xFF\xFEO\0K\0\r\0\n\0\r\0\r\0\n\0"sv, Encoding::utf16le) ==
          "OK\n\n");
    CHECK(pss::text::normalize("O\0K\0\r\0\n\0"sv, Encoding::detect) == "OK\n");
    CHECK(pss::text::normalize("\xEF\xBB\xBFok\r\n", Encoding::utf8) == "ok\n");
  }
}

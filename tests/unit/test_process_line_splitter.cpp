#include "process/line_splitter.hpp"

#include <doctest/doctest.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using pss::process::LineSplitter;

namespace {
// The lines of `text` fed in reads of `chunk` bytes, then the last one without newline.
std::vector<std::string> split(std::string_view text, std::size_t chunk, std::size_t max_line) {
  LineSplitter s(max_line);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < text.size(); at += chunk) {
    s.feed(text.substr(at, chunk), [&](std::string_view line) { lines.emplace_back(line); });
  }
  if (auto last = s.finish()) {
    lines.push_back("(no newline) " + *last);
  }
  return lines;
}
} // namespace

TEST_CASE("process::LineSplitter") {
  SUBCASE("many lines split across reads of every size") {
    std::string text;
    std::vector<std::string> want;
    for (int i = 0; i < 500; ++i) {
      want.push_back("line " + std::to_string(i) +
                     std::string(static_cast<std::size_t>(i % 7), '.'));
      text += want.back() + "\n";
    }
    want.push_back(""); // empty lines are lines
    text += "\n";
    for (std::size_t chunk = 1; chunk <= 41; ++chunk) {
      CAPTURE(chunk);
      CHECK(split(text, chunk, 4096) == want);
    }
    CHECK(split(text, text.size(), 4096) == want);
  }
  SUBCASE("a line split across read boundaries") {
    LineSplitter s(4096);
    std::vector<std::string> lines;
    auto add = [&](std::string_view line) { lines.emplace_back(line); };
    s.feed("hel", add);
    s.feed("lo wor", add);
    CHECK(lines.empty());
    s.feed("ld\nnext", add);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "hello world");
    CHECK(s.finish() == "next");
    CHECK(s.finish() == std::nullopt); // nothing left
  }
  SUBCASE("CRLF, also with the CR and the LF in different reads") {
    std::vector<std::string> want = {"one", "two", "", "three"};
    for (std::size_t chunk = 1; chunk <= 6; ++chunk) {
      CAPTURE(chunk);
      CHECK(split("one\r\ntwo\r\r\n\r\nthree\r\n", chunk, 4096) == want);
    }
  }
  SUBCASE("an over-long line is cut with a marker, and the next line is intact") {
    std::string text = std::string(20, 'x') + "\nnext\n" + std::string(9, 'y') + "\n";
    for (std::size_t chunk : {1, 3, 8, 64}) {
      CAPTURE(chunk);
      CHECK(split(text, chunk, 8) ==
            std::vector<std::string>{"xxxxxxxx...", "next", "yyyyyyyy..."});
    }
  }
  SUBCASE("a line of exactly the maximum is not cut, with or without CR") {
    for (std::size_t chunk : {1, 4, 9, 64}) {
      CAPTURE(chunk);
      CHECK(split("12345678\n12345678\r\nabcdefgh\r\r\nabcdefgh\rX\n", chunk, 8) ==
            std::vector<std::string>{"12345678", "12345678", "abcdefgh", "abcdefgh..."});
    }
  }
  SUBCASE("the last line without newline") {
    CHECK(split("a\nlast", 2, 4096) == std::vector<std::string>{"a", "(no newline) last"});
    CHECK(split("a\nlast\r", 64, 4096) == std::vector<std::string>{"a", "(no newline) last"});
    CHECK(split(std::string(100, 'z'), 7, 10) ==
          std::vector<std::string>{"(no newline) zzzzzzzzzz..."});
    CHECK(split("a\n", 1, 4096) == std::vector<std::string>{"a"});
  }
  SUBCASE("an endless line keeps its memory bounded") {
    LineSplitter s(4096);
    std::string chunk(1 << 20, '\0');
    for (int i = 0; i < 64; ++i) {
      s.feed(chunk, [](std::string_view) { FAIL("no line expected"); });
    }
    auto last = s.finish();
    REQUIRE(last);
    CHECK(last->size() == 4096 + 3);
    CHECK(last->ends_with("..."));
  }
}

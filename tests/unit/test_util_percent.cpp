#include "util/percent.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace pss;

TEST_CASE("percent_decode: escapes decoded, '+' kept, bad escapes named by offset") {
  CHECK(percent_decode("a%20b").value() == "a b");
  CHECK(percent_decode("%41%62%7e%7E").value() == "Ab~~");
  CHECK(percent_decode("plain+text").value() == "plain+text"); // '+' is not a space here
  CHECK(percent_decode("").value().empty());
  CHECK(percent_decode("%00").value() == std::string(1, '\0'));

  auto truncated = percent_decode("abc%4");
  REQUIRE(!truncated);
  CHECK(truncated.error().message == "truncated percent-escape at offset 3");
  CHECK(!percent_decode("%"));

  auto bad = percent_decode("x%zz");
  REQUIRE(!bad);
  CHECK(bad.error().message == "invalid percent-escape '%zz' at offset 1");
}

TEST_CASE("shown_char: printable ASCII as itself, anything else as \\xNN") {
  CHECK(shown_char('a') == "a");
  CHECK(shown_char('\n') == "\\x0a");
  CHECK(shown_char('\xff') == "\\xff");
}

#include "unit/support.hpp"
#include "util/percent.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace pss;
using pss::test::error_of;

TEST_CASE("util::percent_decode") {
  SUBCASE("escapes decoded, either case of hex") {
    CHECK(percent_decode("a%20b").value() == "a b");
    CHECK(percent_decode("%41%62%7e%7E").value() == "Ab~~");
    CHECK(percent_decode("%2F%2f").value() == "//");
    CHECK(percent_decode("%ff").value() == "\xff"); // bytes, not necessarily UTF-8
  }
  SUBCASE("'+' kept, empty input, a NUL byte") {
    CHECK(percent_decode("plain+text").value() == "plain+text"); // '+' is not a space here
    CHECK(percent_decode("").value().empty());
    CHECK(percent_decode("%00").value() == std::string(1, '\0'));
  }
  SUBCASE("a decoded '%' is not decoded again") {
    CHECK(percent_decode("%2541").value() == "%41");
  }
  SUBCASE("a truncated escape, named by its offset") {
    CHECK(error_of(percent_decode("abc%4")) == "truncated percent-escape at offset 3");
    CHECK(error_of(percent_decode("%")) == "truncated percent-escape at offset 0");
    CHECK(error_of(percent_decode("ab%")) == "truncated percent-escape at offset 2");
  }
  SUBCASE("a non-hex escape, shown and named by its offset") {
    CHECK(error_of(percent_decode("x%zz")) == "invalid percent-escape '%zz' at offset 1");
    CHECK(error_of(percent_decode("%4g")) == "invalid percent-escape '%4g' at offset 0");
    CHECK(error_of(percent_decode(std::string("%\n\xff", 3))) ==
          "invalid percent-escape '%\\x0a\\xff' at offset 0");
  }
  SUBCASE("the streaming decoders' errors are the same") {
    CHECK(truncated_percent_escape(3).message == "truncated percent-escape at offset 3");
    CHECK(invalid_percent_escape('z', 'z', 1).message ==
          "invalid percent-escape '%zz' at offset 1");
  }
}

TEST_CASE("util::shown_char") {
  CHECK(shown_char('a') == "a");
  CHECK(shown_char(' ') == " ");
  CHECK(shown_char('~') == "~");
  CHECK(shown_char('\n') == "\\x0a");
  CHECK(shown_char('\x7f') == "\\x7f");
  CHECK(shown_char('\xff') == "\\xff");
}

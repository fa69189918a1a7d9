#include "env/expand.hpp"

#include <doctest/doctest.h>
#include <map>

using pss::env::expand;

TEST_CASE("env::expand") {
  std::map<std::string, std::string> vars{{"A", "x y"}, {"CLAMAV_PATH", "/usr/sbin"}};
  pss::env::Lookup lookup = [&](std::string_view n) -> std::optional<std::string> {
    auto it = vars.find(std::string(n));
    if (it == vars.end()) {
      return std::nullopt;
    }
    return it->second;
  };
  SUBCASE("variables") {
    CHECK(expand("${CLAMAV_PATH}/clamd", lookup).value() == "/usr/sbin/clamd");
  }
  SUBCASE("values are not re-expanded or split") {
    CHECK(expand("--x=${A}", lookup).value() == "--x=x y");
  }
  SUBCASE("$$ and lone $") {
    CHECK(expand("a$$b $c $", lookup).value() == "a$b $c $");
  }
  SUBCASE("unknown variable is named") {
    auto r = expand("${NOPE}/x", lookup);
    REQUIRE(!r);
    CHECK(r.error().message == "unknown variable ${NOPE}");
  }
  SUBCASE("unterminated") {
    auto r = expand("${A", lookup);
    REQUIRE(!r);
    CHECK(r.error().message.find("unterminated") != std::string::npos);
  }
}

TEST_CASE("env::expand placeholders") {
  pss::env::Lookup lookup = [](std::string_view n) -> std::optional<std::string> {
    if (n == "P") {
      return std::string("/opt/x");
    }
    return std::nullopt;
  };
  std::map<std::string, std::string> ph{{"path", "/tmp/a ${P} {path}"}, {"sha256", "abc"}};
  SUBCASE("values are inserted once, never re-scanned") {
    CHECK(expand("${P}/scan {path}", lookup, ph).value() == "/opt/x/scan /tmp/a ${P} {path}");
  }
  SUBCASE("unknown placeholders and braces stay") {
    CHECK(expand("{nope} {} {a{sha256}} {Path}", lookup, ph).value() == "{nope} {} {aabc} {Path}");
  }
  SUBCASE("argument glued to a placeholder") {
    CHECK(expand("--file={path}", lookup, ph).value() == "--file=/tmp/a ${P} {path}");
  }
}

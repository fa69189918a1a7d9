#include "util/size.hpp"

#include <doctest/doctest.h>

TEST_CASE("parse_size") {
  CHECK(pss::parse_size("4096").value() == 4096);
  CHECK(pss::parse_size("100K").value() == 100 * 1024);
  CHECK(pss::parse_size("16M").value() == 16 * 1024 * 1024);
  CHECK(pss::parse_size("2G").value() == 2ULL << 30);
  CHECK(pss::parse_size("2GiB").value() == 2ULL << 30);
  CHECK_FALSE(pss::parse_size(""));
  CHECK_FALSE(pss::parse_size("-1"));
  CHECK_FALSE(pss::parse_size(" 1"));
  CHECK_FALSE(pss::parse_size("1T"));
  CHECK(pss::parse_size("99999999999999G").error().message ==
        "size '99999999999999G' is too large");
}

TEST_CASE("format_size") {
  CHECK(pss::format_size(16 * 1024 * 1024) == "16 MiB");
  CHECK(pss::format_size(2ULL << 30) == "2 GiB");
  CHECK(pss::format_size(1536) == "1536 bytes");
  CHECK(pss::format_size(1) == "1 byte");
}

#include "wine/nt_path.hpp"

#include <doctest/doctest.h>

TEST_CASE("wine::nt_path") {
  CHECK(pss::wine::nt_path("/tmp/eicar.com") == "Z:\\tmp\\eicar.com");
  CHECK(pss::wine::nt_path("/") == "Z:\\");
  CHECK(pss::wine::nt_path("/a b/caf\xc3\xa9.exe") == "Z:\\a b\\caf\xc3\xa9.exe");
  SUBCASE("relative paths are made absolute") {
    auto p = pss::wine::nt_path("x.bin");
    CHECK(p.starts_with("Z:\\"));
    CHECK(p.ends_with("\\x.bin"));
  }
}

#include "util/uuid.hpp"

#include <doctest/doctest.h>
#include <set>

TEST_CASE("util::uuid4") {
  SUBCASE("canonical form, version 4, RFC 4122 variant") {
    for (int i = 0; i < 100; ++i) {
      const std::string id = pss::uuid4();
      REQUIRE(id.size() == 36);
      CHECK(pss::is_uuid(id));
      CHECK(id[14] == '4');
      CHECK(std::string("89ab").find(id[19]) != std::string::npos);
      CHECK(id.find_first_of("ABCDEF") == std::string::npos); // lowercase, as Python's str()
    }
  }
  SUBCASE("fresh every time") {
    std::set<std::string> ids;
    for (int i = 0; i < 1000; ++i) {
      ids.insert(pss::uuid4());
    }
    CHECK(ids.size() == 1000);
  }
  SUBCASE("from bytes: version and variant set, the rest kept") {
    std::array<std::uint8_t, 16> ones{};
    ones.fill(0xff);
    CHECK(pss::uuid4_from_bytes(ones) == "ffffffff-ffff-4fff-bfff-ffffffffffff");
    CHECK(pss::uuid4_from_bytes({}) == "00000000-0000-4000-8000-000000000000");
    CHECK(pss::uuid4_from_bytes({0x9a, 0x9f, 0x83, 0x2f, 0xc8, 0x35, 0x4f, 0x1c, 0xb3, 0x75, 0x21,
                                 0x5e, 0xed, 0xe8, 0xf2, 0x8b}) ==
          "9a9f832f-c835-4f1c-b375-215eede8f28b"); // a kombu delivery tag
  }
}

TEST_CASE("util::is_uuid") {
  CHECK(pss::is_uuid("9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10"));
  CHECK(pss::is_uuid("A5CD5E66-FB5A-3019-8EB3-C3FDBFCC8A8E")); // any version, either case
  CHECK_FALSE(pss::is_uuid(""));
  CHECK_FALSE(pss::is_uuid("9b1d6c1e2f0a4c5e8a512d1c7e3f4a10"));
  CHECK_FALSE(pss::is_uuid("9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a1"));
  CHECK_FALSE(pss::is_uuid("9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a1g"));
  CHECK_FALSE(pss::is_uuid("9b1d6c1e-2f0a-4c5e-8a51_2d1c7e3f4a10"));
}

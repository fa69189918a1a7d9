// The Encapsulated field as Squid, c-icap-client and c-icap write it, and what we refuse.
#include "icap/encapsulated.hpp"

#include <doctest/doctest.h>

using namespace pss::icap;

TEST_CASE("icap::parse_encapsulated") {
  SUBCASE("a RESPMOD with both heads and a body") {
    auto e = parse_encapsulated("req-hdr=0, res-hdr=137, res-body=296");
    REQUIRE(e.has_value());
    CHECK(e->req_hdr == 0u);
    CHECK(e->res_hdr == 137u);
    CHECK(e->body == Encapsulated::Body::res_body);
    CHECK(e->body_offset == 296);
    CHECK(e->has_body());
    CHECK(e->req_hdr_size() == 137);
    CHECK(e->res_hdr_size() == 159);
    CHECK(e->write() == "req-hdr=0, res-hdr=137, res-body=296");
  }
  SUBCASE("OPTIONS and a REQMOD without body") {
    auto o = parse_encapsulated("null-body=0");
    REQUIRE(o.has_value());
    CHECK_FALSE(o->has_body());
    CHECK(o->req_hdr_size() == 0);
    auto r = parse_encapsulated("req-hdr=0,null-body=170");
    REQUIRE(r.has_value());
    CHECK(r->req_hdr_size() == 170);
    CHECK_FALSE(r->res_hdr);
  }
  SUBCASE("a REQMOD with a body, an answer's res-hdr alone") {
    CHECK(parse_encapsulated("req-hdr=0, req-body=40")->body == Encapsulated::Body::req_body);
    auto a = parse_encapsulated("res-hdr=0, res-body=161");
    REQUIRE(a.has_value());
    CHECK(a->res_hdr_size() == 161);
    CHECK(parse_encapsulated("opt-body=0")->body == Encapsulated::Body::opt_body);
  }
  SUBCASE("faults") {
    for (const char* bad :
         {"", "res-body", "res-body=x", "res-hdr=0", "req-hdr=0, res-hdr=0, res-body=9",
          "res-hdr=0, req-hdr=10, res-body=20", "req-hdr=5, res-body=9", "res-body=0, res-hdr=10",
          "req-hdr=0, req-hdr=10, null-body=20", "req-hdr=0, foo-body=10",
          "res-hdr=0, res-body=99999999", "res-hdr=0, res-body=-1",
          "res-hdr=0, res-body=18446744073709551616"}) {
      CAPTURE(bad);
      auto r = parse_encapsulated(bad);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().message.rfind("Encapsulated '", 0) == 0);
    }
  }
}

// ICAP heads as c-icap and Squid send them: folded fields, limits, request and status lines,
// ICAP URLs.
#include "icap/head.hpp"

#include <doctest/doctest.h>

using namespace pss::icap;

TEST_CASE("icap::find_head_end") {
  SUBCASE("incomplete, then complete with what follows left out") {
    const std::string head = "ICAP/1.0 204 Unmodified\r\nISTag: \"x\"\r\n\r\n";
    for (std::size_t n = 0; n < head.size(); ++n) {
      auto r = find_head_end(std::string_view(head).substr(0, n));
      REQUIRE(r.has_value());
      CHECK_FALSE(r->has_value());
    }
    auto r = find_head_end(head + "0\r\n\r\n");
    REQUIRE(r.has_value());
    REQUIRE(r->has_value());
    CHECK(**r == head.size());
  }
  SUBCASE("bare LF line ends") {
    auto r = find_head_end("OPTIONS icap://h/s ICAP/1.0\nHost: h\n\nrest");
    REQUIRE(r.has_value());
    CHECK(**r == 37);
  }
  SUBCASE("a line longer than the limit fails before its end arrives") {
    HeadLimits limits;
    limits.line = 100;
    auto r = find_head_end("RESPMOD icap://h/" + std::string(200, 'a'), limits);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("longer than 100") != std::string::npos);
  }
  SUBCASE("a head longer than the limit") {
    HeadLimits limits;
    limits.head = 1000;
    std::string many = "OPTIONS icap://h/s ICAP/1.0\r\n";
    while (many.size() < 2000) {
      many += "X-A: b\r\n";
    }
    CHECK_FALSE(find_head_end(many, limits).has_value());
  }
  SUBCASE("an empty first line") {
    CHECK_FALSE(find_head_end("\r\nOPTIONS").has_value());
  }
}

TEST_CASE("icap::parse_head") {
  SUBCASE("c-icap's answer for EICAR: a folded X-Violations-Found") {
    const std::string head =
        "ICAP/1.0 200 OK\r\n"
        "Server: C-ICAP/0.5.10\r\n"
        "X-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature;\r\n"
        "X-Violations-Found: 1\r\n"
        "\t-\r\n"
        "\tEicar-Test-Signature\r\n"
        "\t0\r\n"
        "\t0\r\n"
        "Encapsulated: res-hdr=0, res-body=161\r\n"
        "\r\n";
    auto h = parse_head(head);
    REQUIRE(h.has_value());
    CHECK(h->start_line == "ICAP/1.0 200 OK");
    REQUIRE(h->fields.find("x-infection-found"));
    CHECK(*h->fields.find("X-INFECTION-FOUND") ==
          "Type=0; Resolution=2; Threat=Eicar-Test-Signature;");
    REQUIRE(h->fields.find("X-Violations-Found"));
    CHECK(*h->fields.find("X-Violations-Found") == "1\n-\nEicar-Test-Signature\n0\n0");
    CHECK(*h->fields.find("Encapsulated") == "res-hdr=0, res-body=161");
    CHECK(h->fields.find("Allow") == nullptr);
    // Written back folded, and read again the same.
    auto again = parse_head("ICAP/1.0 200 OK\r\n" + h->fields.write() + "\r\n");
    REQUIRE(again.has_value());
    CHECK(again->fields.all() == h->fields.all());
  }
  SUBCASE("repeated fields are all kept, in order") {
    auto h = parse_head("ICAP/1.0 200 OK\r\nX-Virus-ID: a\r\nx-virus-id: b\r\n\r\n");
    REQUIRE(h.has_value());
    CHECK(h->fields.find_all("X-Virus-ID") == std::vector<std::string>{"a", "b"});
  }
  SUBCASE("faults, each named") {
    auto msg = [](std::string_view head) {
      auto h = parse_head(head);
      REQUIRE_FALSE(h.has_value());
      return h.error().message;
    };
    CHECK(msg("ICAP/1.0 200 OK\r\nno colon here\r\n\r\n").find("without a name") !=
          std::string::npos);
    CHECK(msg("ICAP/1.0 200 OK\r\n\tfolded first\r\n\r\n").find("continuation") !=
          std::string::npos);
    CHECK(msg("ICAP/1.0 200 OK\r\nBad Name: x\r\n\r\n").find("header name") != std::string::npos);
    CHECK(msg("ICAP/1.0 200 OK\r\nA: b\r\n").find("empty line") != std::string::npos);
    HeadLimits few;
    few.fields = 2;
    auto h = parse_head("ICAP/1.0 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", few);
    REQUIRE_FALSE(h.has_value());
    CHECK(h.error().message.find("more than 2") != std::string::npos);
  }
}

TEST_CASE("icap::parse_request_line and parse_status_line") {
  auto r = parse_request_line("RESPMOD icap://127.0.0.1:1344/avscan ICAP/1.0");
  REQUIRE(r.has_value());
  CHECK(r->method == "RESPMOD");
  CHECK(r->uri == "icap://127.0.0.1:1344/avscan");
  CHECK(r->version == "ICAP/1.0");
  CHECK_FALSE(parse_request_line("RESPMOD icap://h/s").has_value());
  CHECK_FALSE(parse_request_line("RESPMOD  icap://h/s ICAP/1.0").has_value());
  CHECK_FALSE(parse_request_line("GET / HTTP/1.1").has_value());
  CHECK_FALSE(parse_request_line("RESPMOD icap://h/s ICAP/1.0 extra").has_value());

  auto s = parse_status_line("ICAP/1.0 204 Unmodified");
  REQUIRE(s.has_value());
  CHECK(s->status == 204);
  CHECK(s->reason == "Unmodified");
  auto no_reason = parse_status_line("ICAP/1.0 200");
  REQUIRE(no_reason.has_value());
  CHECK(no_reason->reason.empty());
  CHECK(parse_status_line("ICAP/1.0 403 Forbidden by policy")->reason == "Forbidden by policy");
  CHECK_FALSE(parse_status_line("HTTP/1.1 200 OK").has_value());
  CHECK_FALSE(parse_status_line("ICAP/1.0 20 OK").has_value());
  CHECK_FALSE(parse_status_line("ICAP/1.0 2000 OK").has_value());
  CHECK_FALSE(parse_status_line("ICAP/1.0 099 x").has_value());
}

TEST_CASE("icap::parse_url") {
  auto u = parse_url("icap://127.0.0.1:13440/avscan?allow204=on");
  REQUIRE(u.has_value());
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 13440);
  CHECK(u->service == "avscan");
  CHECK(u->args == "allow204=on");
  CHECK(u->text() == "icap://127.0.0.1:13440/avscan?allow204=on");
  auto d = parse_url("ICAP://scanner.example/respmod");
  REQUIRE(d.has_value());
  CHECK(d->port == 1344);
  auto v6 = parse_url("icap://[::1]:1345/av");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 1345);
  for (const char* bad :
       {"http://h/s", "icap://h:0/s", "icap://h:70000/s", "icap://h:x/s", "icap:///s", "icap://h",
        "icap://h:1344/", "icap://u@h/s", "icap://[::1/s"}) {
    CAPTURE(bad);
    auto r = parse_url(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find(bad) != std::string::npos);
  }
}

#include "engine/clamd/protocol.hpp"

#include <doctest/doctest.h>

using namespace pss::engine::clamd;
using namespace std::string_literals;

TEST_CASE("clamd::frame_command") {
  CHECK(frame_command("PING") == "zPING\0"s);
  CHECK(frame_command("INSTREAM") == "zINSTREAM\0"s);
}

TEST_CASE("clamd::chunk_header") {
  CHECK(chunk_header(0) == "\0\0\0\0"s);
  CHECK(chunk_header(65536) == "\0\x01\0\0"s);
  CHECK(chunk_header(0xFFFFFFFFu) == "\xff\xff\xff\xff"s);
}

TEST_CASE("clamd::parse_reply") {
  SUBCASE("clean stream") {
    auto r = parse_reply("stream: OK\0"s);
    CHECK(r.kind == Reply::Kind::clean);
  }
  SUBCASE("found, .UNOFFICIAL stripped from the name") {
    auto r = parse_reply("stream: Test.EICAR-NDB.UNOFFICIAL FOUND");
    CHECK(r.kind == Reply::Kind::found);
    CHECK(r.name == "Test.EICAR-NDB");
    CHECK(r.raw_name == "Test.EICAR-NDB.UNOFFICIAL");
  }
  SUBCASE("official name kept as is") {
    auto r = parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND\n");
    CHECK(r.kind == Reply::Kind::found);
    CHECK(r.name == "Win.Test.EICAR_HDB-1");
  }
  SUBCASE("path containing ': ' is parsed from the end") {
    auto r = parse_reply("/tmp/a: b: OK.txt: Eicar-Test-Signature FOUND");
    CHECK(r.kind == Reply::Kind::found);
    CHECK(r.name == "Eicar-Test-Signature");
  }
  SUBCASE("size limit is a protocol error without a path") {
    auto r = parse_reply("INSTREAM size limit exceeded. ERROR\0"s);
    CHECK(r.kind == Reply::Kind::error);
    CHECK(r.message == "INSTREAM size limit exceeded.");
  }
  SUBCASE("scan error keeps the reason") {
    auto r = parse_reply("stream: Can't allocate memory ERROR");
    CHECK(r.kind == Reply::Kind::error);
    CHECK(r.message == "Can't allocate memory");
  }
  SUBCASE("timeout reply, always newline-terminated") {
    CHECK(parse_reply("COMMAND READ TIMED OUT\n").kind == Reply::Kind::timeout);
  }
  SUBCASE("unknown command") {
    CHECK(parse_reply("UNKNOWN COMMAND\0"s).kind == Reply::Kind::unknown_command);
  }
  SUBCASE("PONG is other") {
    auto r = parse_reply("PONG\0"s);
    CHECK(r.kind == Reply::Kind::other);
    CHECK(r.message == "PONG");
  }
  SUBCASE("a name ending in OK is not clean") {
    CHECK(parse_reply("stream: Foo.OK FOUND").kind == Reply::Kind::found);
  }
  SUBCASE("empty reply is other") {
    CHECK(parse_reply("").kind == Reply::Kind::other);
  }
  SUBCASE("FOUND without a name is other, not a detection (found by fuzz_clamd_session)") {
    for (auto line : {"stream:  FOUND", " FOUND", "stream: .UNOFFICIAL FOUND"}) {
      auto r = parse_reply(line);
      CHECK(r.kind == Reply::Kind::other);
      CHECK(r.message == line);
    }
  }
}

TEST_CASE("clamd::parse_version") {
  SUBCASE("official database") {
    auto v = parse_version("ClamAV 1.4.6/27000/Mon Jun  2 08:22:33 2025\0"s);
    REQUIRE(v);
    CHECK(v->engine == "1.4.6");
    CHECK(v->definitions == "27000");
    CHECK(v->db_date == "Mon Jun  2 08:22:33 2025");
  }
  SUBCASE("custom database has no definition number") {
    auto v = parse_version("ClamAV 1.4.6");
    REQUIRE(v);
    CHECK(v->engine == "1.4.6");
    CHECK_FALSE(v->definitions);
    CHECK_FALSE(v->db_date);
  }
  SUBCASE("not a version") {
    CHECK_FALSE(parse_version("COMMAND UNAVAILABLE"));
    CHECK_FALSE(parse_version("ClamAV "));
  }
}

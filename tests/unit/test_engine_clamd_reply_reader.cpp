#include "engine/clamd/reply_reader.hpp"

#include <doctest/doctest.h>

using namespace pss::engine::clamd;
using namespace std::string_literals;
using pss::model::Verdict;

namespace {

// Feeds `bytes` in pieces of `piece` bytes, as reads would return them.
ReplyReader read(std::string_view bytes, std::size_t piece) {
  ReplyReader r;
  while (!bytes.empty() && !r.complete()) {
    std::size_t n = std::min(piece, bytes.size());
    r.feed(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return r;
}

} // namespace

TEST_CASE("clamd::ReplyReader") {
  SUBCASE("a NUL-terminated reply, however it is split") {
    for (std::size_t piece : {1, 3, 100}) {
      auto r = read("stream: Eicar-Test-Signature FOUND\0"s, piece);
      CHECK(r.complete());
      auto o = r.outcome(false);
      REQUIRE(o);
      REQUIRE(o->reply);
      CHECK(o->reply->kind == Reply::Kind::found);
      CHECK(o->reply->name == "Eicar-Test-Signature");
    }
  }
  SUBCASE("a newline ends a reply too") {
    auto r = read("COMMAND READ TIMED OUT\n", 5);
    REQUIRE(r.complete());
    CHECK(r.outcome(false)->reply->kind == Reply::Kind::timeout);
  }
  SUBCASE("only the first of several replies counts") {
    ReplyReader r;
    CHECK(r.feed("stream: OK\0stream: X FOUND\0"s));
    CHECK(r.text() == "stream: OK");
    CHECK(r.feed("more"));
    CHECK(r.text() == "stream: OK");
    CHECK(r.outcome(false)->reply->kind == Reply::Kind::clean);
  }
  SUBCASE("the size limit reply") {
    auto r = read("INSTREAM size limit exceeded. ERROR\0"s, 7);
    auto o = r.outcome(false);
    REQUIRE(o->reply);
    CHECK(o->reply->kind == Reply::Kind::error);
    CHECK(o->reply->message == "INSTREAM size limit exceeded.");
  }
  SUBCASE("a reply without a terminator counts when clamd closes the connection") {
    auto r = read("stream: OK", 4);
    CHECK(!r.complete());
    auto o = r.outcome(true);
    REQUIRE(o);
    CHECK(o->reply->kind == Reply::Kind::clean);
  }
  SUBCASE("... but not after a reset or a timeout: the caller says what failed") {
    auto r = read("stream: OK", 4);
    CHECK(!r.outcome(false));
  }
  SUBCASE("nothing received: the caller says what failed") {
    ReplyReader r;
    CHECK(!r.outcome(true));
    CHECK(!r.outcome(false));
  }
  SUBCASE("an empty reply is an error, not a lost connection") {
    auto o = read("\0stream: OK\0"s, 1).outcome(false);
    REQUIRE(o);
    CHECK(!o->reply);
    CHECK(o->error == "clamd sent an empty reply");
    CHECK(!o->connection_lost);
  }
  SUBCASE("a reply over the limit is an error, and no more than the limit is kept") {
    std::string huge(ReplyReader::k_max_reply + 1, 'A');
    for (std::size_t piece : {std::size_t{4096}, huge.size()}) {
      auto r = read(huge + '\0', piece);
      CHECK(r.complete());
      CHECK(r.text().size() == ReplyReader::k_max_reply);
      auto o = r.outcome(true);
      REQUIRE(o);
      CHECK(!o->reply);
      CHECK(o->error == "clamd sent a reply over 65536 bytes without a terminator");
    }
  }
  SUBCASE("a reply of exactly the limit is kept") {
    std::string line(ReplyReader::k_max_reply, 'A');
    auto o = read(line + '\n', 1000).outcome(false);
    REQUIRE(o);
    CHECK(o->reply);
  }
}

TEST_CASE("clamd::to_analysis") {
  auto analysis = [](std::string_view line) {
    Outcome o;
    o.reply = parse_reply(line);
    return to_analysis(o);
  };
  SUBCASE("OK is benign") {
    CHECK(analysis("stream: OK").result == Verdict::benign);
  }
  SUBCASE("FOUND is malicious, named") {
    auto a = analysis("stream: PSS.Test.Marker-7f3a.UNOFFICIAL FOUND");
    CHECK(a.result == Verdict::malicious);
    CHECK(a.result_name == "PSS.Test.Marker-7f3a");
    CHECK(a.metadata["signature"] == "PSS.Test.Marker-7f3a.UNOFFICIAL");
  }
  SUBCASE("FOUND without a name is unknown, never a nameless malicious") {
    auto a = analysis("stream: .UNOFFICIAL FOUND");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "clamd: unexpected reply 'stream: .UNOFFICIAL FOUND'");
  }
  SUBCASE("a limit clamd hit (AlertExceedsMax) is unknown") {
    auto a = analysis("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "clamd did not scan it all: its MaxFileSize limit was exceeded");
  }
  SUBCASE("an ERROR is unknown with clamd's reason") {
    auto a = analysis("INSTREAM size limit exceeded. ERROR");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "clamd: INSTREAM size limit exceeded.");
  }
  SUBCASE("anything else is an unexpected reply") {
    auto a = analysis("PONG");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "clamd: unexpected reply 'PONG'");
  }
  SUBCASE("no reply: unknown with the error") {
    Outcome o;
    o.error = "timeout: clamd did not answer";
    auto a = to_analysis(o);
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == o.error);
  }
}

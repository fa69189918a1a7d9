// JSON-RPC framing both ways, code pages of replies, and the manifest section.
#include "engine/jsonrpc/framing.hpp"
#include "engine/jsonrpc/spec.hpp"

#include <doctest/doctest.h>

using namespace pss;
using namespace pss::engine::jsonrpc;
using text::Encoding;

namespace {

std::string next_or_fail(Decoder& d) {
  auto r = d.next();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  return **r;
}

bool needs_more(Decoder& d) {
  auto r = d.next();
  return r && !r->has_value();
}

} // namespace

TEST_CASE("line framing: messages split anywhere, CRLF and blank lines tolerated") {
  Decoder d(Framing::line, Encoding::utf8);
  d.feed("{\"a\":1}\r\n\n{\"b\"");
  CHECK(next_or_fail(d) == "{\"a\":1}");
  CHECK(needs_more(d));
  d.feed(":2}\n");
  CHECK(next_or_fail(d) == "{\"b\":2}");
  CHECK(needs_more(d));
  CHECK(d.buffered() == 0);
}

TEST_CASE("line framing in CP1252: the reply is decoded to UTF-8") {
  Decoder d(Framing::line, Encoding::cp1252);
  d.feed("{\"name\":\"Trojan.\xC9icar\x96Test (\xFC)\"}\r\n");
  CHECK(next_or_fail(d) == "{\"name\":\"Trojan.\xC3\x89icar\xE2\x80\x93Test (\xC3\xBC)\"}");
}

TEST_CASE("line framing in UTF-16LE: the newline is 0A 00 on a code-unit boundary") {
  Decoder d(Framing::line, Encoding::utf16le);
  // U+0A0A would be the bytes 0A 0A: not a newline. "\u0A0A" then "\n".
  std::string msg = std::string("{\0\"\0\x0A\x0A}\0", 8);
  d.feed(msg);
  CHECK(needs_more(d));
  d.feed(std::string("\n\0", 2));
  CHECK(next_or_fail(d) == "{\"\xE0\xA8\x8A}");
}

TEST_CASE("content-length framing: header case, partial bodies, two messages") {
  Decoder d(Framing::content_length, Encoding::utf8);
  d.feed("content-LENGTH: 7\r\n\r\n{\"a\":");
  CHECK(needs_more(d));
  d.feed("1}Content-Length: 2\r\nContent-Type: x\r\n\r\n{}");
  CHECK(next_or_fail(d) == "{\"a\":1}");
  CHECK(next_or_fail(d) == "{}");
}

TEST_CASE("content-length framing: broken headers are errors, not waits") {
  Decoder bad(Framing::content_length, Encoding::utf8);
  bad.feed("Content-Length: x1\r\n\r\n");
  CHECK_FALSE(bad.next().has_value());
  Decoder missing(Framing::content_length, Encoding::utf8);
  missing.feed("Content-Type: x\r\n\r\n{}");
  CHECK_FALSE(missing.next().has_value());
  Decoder huge(Framing::content_length, Encoding::utf8, 100);
  huge.feed("Content-Length: 101\r\n\r\n");
  CHECK_FALSE(huge.next().has_value());
}

TEST_CASE("an endless line is an error once over the limit") {
  Decoder d(Framing::line, Encoding::utf8, 10);
  d.feed("0123456789abc");
  CHECK_FALSE(d.next().has_value());
}

TEST_CASE("frame(): requests in each framing, ASCII whatever the replies' code page") {
  CHECK(frame("{}", Framing::line) == "{}\n");
  CHECK(frame("{}", Framing::content_length) == "Content-Length: 2\r\n\r\n{}");
  CHECK_FALSE(parse_framing("lines").has_value());
}

TEST_CASE("the manifest section: defaults, verdict mapping, errors name the field") {
  auto j = nlohmann::json::parse(R"({
    "transport": "tcp", "port": "{port}", "framing": "line", "encoding": "cp1252",
    "scan": {"method": "scan", "params": {"path": "{nt_path}"},
             "verdict": "result.verdict", "name": "result.name",
             "verdicts": {"infected": "malicious", "clean": "benign"}},
    "version": {"method": "version", "engine": "engine_version", "definitions": "sigs"},
    "ping": {"method": "ping"}, "shutdown": {"method": "shutdown"}
  })");
  auto s = parse_spec(j, "x");
  REQUIRE(s.has_value());
  CHECK(s->wire.encoding == Encoding::cp1252);
  CHECK(s->scan.params["path"] == "{nt_path}");
  CHECK(s->verdicts.at("infected") == model::Verdict::malicious);
  CHECK(s->definitions_field == "sigs");
  REQUIRE(s->shutdown);

  auto reply = nlohmann::json::parse(R"({"result": {"verdict": "clean"}})");
  const auto* v = find_path(reply, s->verdict_field);
  REQUIRE(v != nullptr);
  CHECK(*v == "clean");
  CHECK(find_path(reply, "result.name") == nullptr);
  CHECK(find_path(reply, "result.verdict.deeper") == nullptr);

  j["scan"]["verdicts"]["odd"] = "evil";
  auto bad = parse_spec(j, "engines/x/engine.json jsonrpc");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message ==
        "engines/x/engine.json jsonrpc: field 'scan.verdicts.odd' must be malicious, benign, "
        "suspicious or unknown");
  j["scan"]["verdicts"].erase("odd");
  j["transport"] = "udp";
  CHECK_FALSE(parse_spec(j, "x").has_value());
}

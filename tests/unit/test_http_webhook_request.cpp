#include "http/webhook_request.hpp"
#include "util/hmac.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace pss::http;
namespace bh = boost::beast::http;

namespace {

const std::string k_bounty =
    R"({"id": 7, "artifact_type": "file", "artifact_uri": "https://example.com/a.exe"})";

RequestRules rules(std::string secret = "s3cret") {
  RequestRules r;
  r.secret = std::move(secret);
  r.engines = {"clamav", "yara"};
  return r;
}

Request request(bh::verb method, std::string target, std::string body = {},
                std::string event = {}) {
  Request req{method, target, 11};
  req.body() = std::move(body);
  if (!event.empty()) {
    req.set("X-POLYSWARM-EVENT", event);
  }
  req.prepare_payload();
  return req;
}

Request signed_post(std::string target, std::string body, std::string event = "bounty") {
  auto req = request(bh::verb::post, std::move(target), std::move(body), std::move(event));
  req.set("X-POLYSWARM-SIGNATURE", pss::hmac_sha256_hex("s3cret", req.body()));
  return req;
}

// Parses raw bytes with the rules' limits, as the server reads them.
boost::system::error_code parse(std::string_view bytes, const RequestRules& r) {
  RequestParser p;
  apply_limits(p, r);
  p.eager(true);
  boost::system::error_code ec;
  p.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  return ec;
}

// What the server answers to raw bytes that start a connection: read as http::async_read
// does (eager; at the end of the bytes the peer has closed), checked with check_framing(),
// then classify_read_error() or classify_request().
Decision answer_to(std::string_view bytes, const RequestRules& r) {
  RequestParser p;
  apply_limits(p, r);
  p.eager(true);
  boost::system::error_code ec;
  while (!ec && !p.is_done()) {
    auto n = p.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(n);
    if (ec == bh::error::need_more || (!ec && n == 0)) {
      ec = {};
      if (p.got_some()) {
        p.put_eof(ec);
      } else {
        ec = bh::error::end_of_stream;
      }
      break;
    }
  }
  if (!ec) {
    ec = check_framing(p.get());
  }
  if (ec) {
    return classify_read_error(ec, r, p.get(), bytes);
  }
  return classify_request(p.get(), r, true);
}

std::string error_of(const Decision& d) {
  return nlohmann::json::parse(d.body).value("error", "");
}

} // namespace

TEST_CASE("http::classify_request") {
  auto r = rules();
  SUBCASE("GET / and GET /<engine>: 200, no signature needed") {
    for (const char* target : {"/", "/clamav", "/yara/", "/yara?x=1"}) {
      auto d = classify_request(request(bh::verb::get, target), r, true);
      CHECK(d.kind == Decision::Kind::answer);
      CHECK(d.status == bh::status::ok);
      CHECK(d.body == R"({"status":"OK"})");
    }
  }
  SUBCASE("GET /metrics is left to the server") {
    CHECK(classify_request(request(bh::verb::get, "/metrics"), r, true).kind ==
          Decision::Kind::metrics);
    CHECK(classify_request(request(bh::verb::get, "/metrics?x"), r, true).kind ==
          Decision::Kind::metrics);
  }
  SUBCASE("an unknown engine: 404") {
    auto d = classify_request(request(bh::verb::get, "/nope"), r, true);
    CHECK(d.status == bh::status::not_found);
    CHECK(nlohmann::json::parse(d.body)["error"] == "no engine at /nope");
  }
  SUBCASE("a target that is not a path names no engine (it was read from the second byte)") {
    for (const char* target : {"xclamav", "*", "http://host/clamav", "clamav"}) {
      CHECK(classify_request(request(bh::verb::get, target), r, true).status ==
            bh::status::not_found);
    }
  }
  SUBCASE("a target that is not UTF-8: 404 with JSON, not an exception") {
    auto d = classify_request(request(bh::verb::get, "/\xff"), r, true);
    CHECK(d.status == bh::status::not_found);
    CHECK(nlohmann::json::parse(d.body)["error"] == "no engine at /\xef\xbf\xbd");
  }
  SUBCASE("another method: 405 with Allow") {
    auto d = classify_request(request(bh::verb::put, "/"), r, true);
    CHECK(d.status == bh::status::method_not_allowed);
    CHECK(make_response(d, 11)[bh::field::allow] == "GET, POST");
  }
  SUBCASE("no signature: 400, rejected") {
    auto d = classify_request(request(bh::verb::post, "/", k_bounty, "bounty"), r, true);
    CHECK(d.status == bh::status::bad_request);
    CHECK(d.outcome == BountyOutcome::rejected);
  }
  SUBCASE("a bad signature: 401, rejected, logged") {
    auto req = signed_post("/", k_bounty);
    req.body() += " ";
    auto d = classify_request(req, r, true);
    CHECK(d.status == bh::status::unauthorized);
    CHECK(d.outcome == BountyOutcome::rejected);
    CHECK(!d.warning.empty());
  }
  SUBCASE("a signed ping: 200") {
    auto d = classify_request(signed_post("/clamav", "{}", "ping"), r, true);
    CHECK(d.status == bh::status::ok);
    CHECK(d.outcome == BountyOutcome::none);
  }
  SUBCASE("another event: 400") {
    auto d = classify_request(signed_post("/", "{}", "assertion"), r, true);
    CHECK(d.status == bh::status::bad_request);
    CHECK(nlohmann::json::parse(d.body)["error"] ==
          "unknown X-POLYSWARM-EVENT 'assertion' (bounty or ping)");
  }
  SUBCASE("an event that is not UTF-8: 400 with JSON, not an exception") {
    auto d = classify_request(signed_post("/", "{}", "\xc3"), r, true);
    CHECK(d.status == bh::status::bad_request);
    CHECK(nlohmann::json::parse(d.body)["error"] ==
          "unknown X-POLYSWARM-EVENT '\xef\xbf\xbd' (bounty or ping)");
  }
  SUBCASE("a signed bounty: 202, for the engine its path names") {
    auto req = signed_post("/yara", k_bounty);
    req.set("X-POLYSWARM-DELIVERY", "d-1");
    auto d = classify_request(req, r, true);
    CHECK(d.status == bh::status::accepted);
    CHECK(d.outcome == BountyOutcome::accepted);
    REQUIRE(d.bounty);
    CHECK(d.bounty->id == 7);
    CHECK(d.engine == 1);
    CHECK(d.delivery == "d-1");
  }
  SUBCASE("a bounty that does not parse: 400, rejected") {
    auto d = classify_request(signed_post("/", R"({"id": "x"})"), r, true);
    CHECK(d.status == bh::status::bad_request);
    CHECK(d.body == R"({"bounty":"Invalid bounty request"})");
    CHECK(d.outcome == BountyOutcome::rejected);
    CHECK(!d.bounty);
  }
  SUBCASE("the queue full: 503 with Retry-After") {
    auto d = classify_request(signed_post("/", k_bounty), r, false);
    CHECK(d.status == bh::status::service_unavailable);
    CHECK(d.outcome == BountyOutcome::busy);
    CHECK(!d.bounty);
    CHECK(make_response(d, 11)[bh::field::retry_after] == "1");
  }
  SUBCASE("no secret (--insecure): unsigned bounties accepted") {
    auto d = classify_request(request(bh::verb::post, "/", k_bounty, "bounty"), rules(""), true);
    CHECK(d.status == bh::status::accepted);
  }
}

TEST_CASE("http::classify_read_error") {
  auto r = rules();
  r.body_limit = 16;
  r.header_limit = 64;
  SUBCASE("a body over the limit: 413") {
    auto ec = parse("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", r);
    CHECK(ec == bh::error::body_limit);
    auto d = classify_read_error(ec, r);
    CHECK(d.status == bh::status::payload_too_large);
    CHECK(d.body == R"({"error":"body over 16 bytes"})");
  }
  SUBCASE("headers over the limit: 431") {
    auto ec = parse("GET / HTTP/1.1\r\nX-Padding: " + std::string(80, 'a') + "\r\n\r\n", r);
    CHECK(ec == bh::error::header_limit);
    CHECK(classify_read_error(ec, r).status == bh::status::request_header_fields_too_large);
  }
  SUBCASE("no request started, a timeout, a socket error: closed without an answer") {
    CHECK(classify_read_error(bh::error::end_of_stream, r).kind == Decision::Kind::close);
    CHECK(answer_to("", r).kind == Decision::Kind::close);
    CHECK(classify_read_error(boost::beast::error::timeout, r).kind == Decision::Kind::close);
    CHECK(classify_read_error(boost::asio::error::connection_reset, r).kind ==
          Decision::Kind::close);
    CHECK(classify_read_error(boost::asio::error::operation_aborted, r).kind ==
          Decision::Kind::close);
  }
  SUBCASE("without the bytes or the partial request, a parse error is still a 400") {
    auto d = classify_read_error(bh::error::bad_version, r);
    CHECK(d.status == bh::status::bad_request);
    CHECK(error_of(d) == "bad request: invalid HTTP version");
  }
}

// Each malformed request of issue 14, and its neighbours: an answer that names the fault.
TEST_CASE("http::classify_read_error: malformed requests") {
  auto r = rules("");
  auto status = [&](std::string_view bytes) { return answer_to(bytes, r).status; };
  auto error = [&](std::string_view bytes) { return error_of(answer_to(bytes, r)); };
  const auto both = "bad request: both Content-Length and Transfer-Encoding";
  SUBCASE("Content-Length and Transfer-Encoding, in either order, whatever the coding") {
    CHECK(error("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                "0\r\n\r\n") == both);
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                "0\r\n\r\n") == both);
    // Beast accepts these two (it goes by Content-Length): check_framing() does not.
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"
                "hello") == both);
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: x\r\nContent-Length: 0\r\n\r\n") == both);
  }
  SUBCASE("a Transfer-Encoding that does not end with one chunked") {
    // Beast reads these as requests without a body, and the body as the next request.
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /x HTTP/1.1\r\n\r\n") ==
          "bad request: Transfer-Encoding does not end with chunked");
    CHECK(status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") ==
          bh::status::bad_request);
    CHECK(status("POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n") == bh::status::bad_request);
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") ==
          "bad request: Transfer-Encoding has chunked twice");
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
                "\r\n0\r\n\r\n") == "bad request: invalid Transfer-Encoding");
    CHECK(error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") ==
          "bad request: Transfer-Encoding in an HTTP/1.0 request");
  }
  SUBCASE("a coding under a final chunked that we cannot undo: 501") {
    auto d = answer_to("POST / HTTP/1.1\r\nTransfer-Encoding: GZip;q=1, chunked\r\n\r\n"
                       "0\r\n\r\n",
                       r);
    CHECK(d.status == bh::status::not_implemented);
    CHECK(error_of(d) == "transfer coding 'gzip' not implemented (only chunked)");
    CHECK(status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n0\r\n\r\n") == bh::status::not_implemented);
  }
  SUBCASE("two different Content-Lengths (the same one twice is allowed, RFC 9110 §8.6)") {
    CHECK(error("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab") ==
          "bad request: different Content-Length values");
    CHECK(status("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nab") == bh::status::bad_request);
    auto same = answer_to("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", r);
    CHECK(error_of(same) == "unknown X-POLYSWARM-EVENT '' (bounty or ping)"); // read whole
  }
  SUBCASE("a negative, signed, 20-digit or empty Content-Length") {
    for (const char* cl : {"-1", "+1", "99999999999999999999", "", "1x", "0x10"}) {
      CAPTURE(cl);
      CHECK(error("POST / HTTP/1.1\r\nContent-Length: " + std::string(cl) + "\r\n\r\n") ==
            "bad request: invalid Content-Length");
    }
  }
  SUBCASE("bare LF line ends, in the request line or a header") {
    const auto lf = "bad request: a line ends in LF without CR";
    CHECK(error("GET / HTTP/1.1\nHost: x\n\n") == lf);
    CHECK(error("GET / HTTP/1.1\r\nHost: x\n\r\n") == lf);
    // A header ended by LF alone: Beast waits for a second byte before it judges the line,
    // so a client that sends nothing more gets no answer before the read timeout.
    CHECK(error("GET / HTTP/1.1\r\nHost: x\r\n\n\n") == lf);
    CHECK(error("GET / HTTP/1.1\r\nHost: x\r\r\n") == "bad request: a line ends in CR without LF");
  }
  SUBCASE("a NUL or another control character in a header") {
    using namespace std::string_literals;
    CHECK(error("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"s) ==
          "bad request: invalid character in a header value");
    CHECK(error("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n") ==
          "bad request: invalid character in a header value");
    CHECK(error("GET / HTTP/1.1\r\nX\0A: b\r\n\r\n"s) ==
          "bad request: invalid header line (no colon, or an invalid name)");
  }
  SUBCASE("a header without a colon, or with a space before it") {
    const auto bad = "bad request: invalid header line (no colon, or an invalid name)";
    CHECK(error("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n") == bad);
    CHECK(error("GET / HTTP/1.1\r\nHost : x\r\n\r\n") == bad);
    CHECK(error("GET / HTTP/1.1\r\n: x\r\n\r\n") == bad);
  }
  SUBCASE("HTTP/0.9: a 400 (in HTTP/1.1: 0.9 has no status line)") {
    CHECK(error("GET /\r\n") ==
          "bad request: no HTTP version in the request line (HTTP/0.9 is not supported)");
    CHECK(error("GET /\r\n\r\n") ==
          "bad request: no HTTP version in the request line (HTTP/0.9 is not supported)");
  }
  SUBCASE("another major version: 505; another minor one of 1.x, or none: 400") {
    auto d = answer_to("GET / HTTP/2.0\r\nHost: x\r\n\r\n", r);
    CHECK(d.status == bh::status::http_version_not_supported);
    CHECK(error_of(d) == "HTTP/2.0 is not supported: use HTTP/1.1");
    CHECK(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == bh::status::http_version_not_supported);
    CHECK(status("GET / HTTP/3.0\r\n\r\n") == bh::status::http_version_not_supported);
    CHECK(status("GET / HTTP/0.9\r\n\r\n") == bh::status::http_version_not_supported);
    CHECK(error("GET / HTTP/1.9\r\n\r\n") ==
          "bad request: HTTP/1.9 is not supported: use HTTP/1.1");
    CHECK(error("GET / HTTQ/1.1\r\n\r\n") == "bad request: invalid HTTP version");
    CHECK(error("GET / HTTP/1.1 \r\n\r\n") == "bad request: invalid HTTP version");
  }
  SUBCASE("a bad method or target, not HTTP at all") {
    CHECK(error("G@T / HTTP/1.1\r\n\r\n") == "bad request: invalid method");
    CHECK(error("\x16\x03\x01\x00\xa5\x01\x00") == "bad request: invalid method"); // TLS
    CHECK(error("GET /\x7f HTTP/1.1\r\n\r\n") == "bad request: invalid request target");
  }
  SUBCASE("a bad chunk") {
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") ==
          "bad request: invalid chunked body");
  }
  SUBCASE("a request cut short by the peer's close: 400, as the peer may still read") {
    CHECK(error("GET / HTTP/1.1\r\nHost") ==
          "bad request: the connection was closed before the request's end");
    CHECK(status("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab") == bh::status::bad_request);
  }
  SUBCASE("well-formed neighbours still pass") {
    CHECK(status("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == bh::status::ok);
    CHECK(status("GET / HTTP/1.0\r\n\r\n") == bh::status::ok);
    CHECK(status("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n") == bh::status::ok); // obs-fold
    CHECK(error("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n") ==
          "unknown X-POLYSWARM-EVENT '' (bounty or ping)");
  }
  SUBCASE("every answer's body is JSON, whatever the bytes quoted") {
    auto d = answer_to("GET / HTTP/1.1\r\nX-\xff: b\r\n\r\n", r);
    CHECK(d.status == bh::status::bad_request);
    CHECK(nlohmann::json::accept(d.body));
  }
}

TEST_CASE("http::make_response") {
  Decision d;
  d.status = bh::status::accepted;
  d.body = R"({"status":"ACCEPTED"})";
  auto res = make_response(d, 10);
  CHECK(res.result() == bh::status::accepted);
  CHECK(res.version() == 10);
  CHECK(res[bh::field::content_type] == "application/json");
  CHECK(res[bh::field::content_length] == std::to_string(d.body.size()));
  CHECK(res[bh::field::server] == "pssupervise");
  d.kind = Decision::Kind::metrics;
  d.body = "# HELP x\n";
  auto m = make_response(d, 11);
  CHECK(m.result() == bh::status::ok);
  CHECK(m[bh::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
}

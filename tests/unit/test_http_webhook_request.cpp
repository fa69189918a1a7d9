#include "http/webhook_request.hpp"
#include "util/hmac.hpp"

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
  SUBCASE("anything else closes the connection") {
    CHECK(classify_read_error(bh::error::end_of_stream, r).kind == Decision::Kind::close);
    CHECK(classify_read_error(bh::error::bad_method, r).kind == Decision::Kind::close);
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

// Fuzzes the webhook's request path from raw bytes, as the server runs it without its sockets:
// Beast's request parser with the server's limits (apply_limits), requests read one after
// another from the same bytes while they keep the connection alive, then check_framing() and
// classify_request() (routing, X-POLYSWARM-SIGNATURE, the event, the bounty) or
// classify_read_error(), and make_response(). The first byte chooses: a secret or none
// (--insecure), whether to sign each body with the secret (so that the fuzzer reaches the
// bounty parser), a full queue, and small limits (so that 413 and 431 are reached).
// Invariants: every request gets a status the server can return; a connection is closed
// without an answer only when no request was started; a request that could not be read is
// answered 400, 413, 431, 501 or 505; a POST never gets a 2xx without a valid signature when
// there is a secret; a 2xx names an engine by its exact path; every answer's body is JSON;
// nothing throws.
#include "check.hpp"
#include "http/webhook_request.hpp"
#include "util/hmac.hpp"

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <nlohmann/json.hpp>

namespace bh = boost::beast::http;
using namespace pss::http;

namespace {

constexpr std::string_view k_secret = "s3cret";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Reads one request from the front of `in` as Beast's http::async_read does (eager parsing;
// once the parser needs more than is left, the peer has closed the connection).
boost::system::error_code read_request(std::string_view& in, RequestParser& parser) {
  parser.eager(true);
  boost::system::error_code ec;
  while (!parser.is_done()) {
    std::size_t n = 0;
    if (!in.empty()) {
      n = parser.put(boost::asio::const_buffer(in.data(), in.size()), ec);
      in.remove_prefix(n);
      if (ec && ec != bh::error::need_more) {
        return ec;
      }
    }
    if (in.empty() || ec == bh::error::need_more || n == 0) {
      // The end of the bytes: what read_some does at EOF.
      ec = {};
      if (parser.got_some()) {
        parser.put_eof(ec);
        FUZZ_CHECK(ec || parser.is_done());
      } else {
        ec = bh::error::end_of_stream;
      }
      return ec;
    }
  }
  return ec;
}

void check_response(const Decision& d, unsigned version) {
  FUZZ_CHECK(d.kind != Decision::Kind::close);
  Response r = make_response(d, version);
  FUZZ_CHECK(r.result_int() == (d.kind == Decision::Kind::metrics ? 200u : r.result_int()));
  FUZZ_CHECK(r[bh::field::content_length] == std::to_string(r.body().size()));
  if (d.kind == Decision::Kind::answer) {
    FUZZ_CHECK(r.result() == d.status);
    FUZZ_CHECK(nlohmann::json::accept(r.body()));
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  if (in.empty()) {
    return 0;
  }
  auto mode = static_cast<unsigned char>(in.front());
  in.remove_prefix(1);
  RequestRules rules;
  rules.secret = (mode & 1) ? std::string(k_secret) : std::string();
  bool sign = mode & 2;
  bool queue_has_room = !(mode & 4);
  if (mode & 8) {
    rules.body_limit = 64;
    rules.header_limit = 256;
  }
  rules.engines = {"clamav", "yara"};

  // The server's session loop: one request after another while they keep the connection.
  for (;;) {
    RequestParser parser;
    apply_limits(parser, rules);
    auto ec = read_request(in, parser);
    if (!ec) {
      ec = check_framing(parser.get());
    }
    if (ec) {
      Decision d = classify_read_error(ec, rules, parser.get(), in);
      // Only a connection that sent nothing (more) is closed without an answer.
      FUZZ_CHECK((d.kind == Decision::Kind::close) == (ec == bh::error::end_of_stream));
      if (d.kind != Decision::Kind::close) {
        static constexpr unsigned k_read_statuses[] = {400, 413, 431, 501, 505};
        FUZZ_CHECK(std::find(std::begin(k_read_statuses), std::end(k_read_statuses),
                             static_cast<unsigned>(d.status)) != std::end(k_read_statuses));
        check_response(d, 11);
      }
      break; // answered (keep-alive off) or closed
    }
    Request req = parser.release();
    FUZZ_CHECK(req.body().size() <= rules.body_limit);
    if (sign && !rules.secret.empty()) {
      req.set("X-POLYSWARM-SIGNATURE", pss::hmac_sha256_hex(rules.secret, req.body()));
    }
    Decision d = classify_request(req, rules, queue_has_room);
    check_response(d, req.version());

    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    unsigned status = d.kind == Decision::Kind::metrics ? 200 : static_cast<unsigned>(d.status);
    static constexpr unsigned k_statuses[] = {200, 202, 400, 401, 404, 405, 503};
    FUZZ_CHECK(std::find(std::begin(k_statuses), std::end(k_statuses), status) !=
               std::end(k_statuses));
    if (d.kind == Decision::Kind::metrics) {
      FUZZ_CHECK(req.method() == bh::verb::get && path == "/metrics");
    }
    if (status / 100 == 2 && d.kind == Decision::Kind::answer) {
      // Only the exact paths of the engines answer.
      bool named = path == "/";
      for (const auto& e : rules.engines) {
        named = named || path == "/" + e || path == "/" + e + "/";
      }
      FUZZ_CHECK(named);
    }
    if (req.method() == bh::verb::post && status / 100 == 2 && !rules.secret.empty()) {
      auto sig = req[std::string_view("X-POLYSWARM-SIGNATURE")];
      FUZZ_CHECK(lower(sig) == pss::hmac_sha256_hex(rules.secret, req.body()));
    }
    if (status == 202) {
      FUZZ_CHECK(req.method() == bh::verb::post && queue_has_room);
      FUZZ_CHECK(d.outcome == BountyOutcome::accepted && d.bounty);
      FUZZ_CHECK(d.engine < rules.engines.size());
      FUZZ_CHECK(req[std::string_view("X-POLYSWARM-EVENT")] == "bounty");
    } else {
      FUZZ_CHECK(d.outcome != BountyOutcome::accepted && !d.bounty);
    }
    if (status == 503) {
      FUZZ_CHECK(!queue_has_room && d.outcome == BountyOutcome::busy);
    }
    if (d.outcome == BountyOutcome::rejected) {
      FUZZ_CHECK(status == 400 || status == 401);
    }
    if (!req.keep_alive() || in.empty()) {
      break;
    }
  }
  return 0;
}

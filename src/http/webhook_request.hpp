// What the webhook answers to one HTTP request, decided without sockets: the read limits,
// routing, the X-POLYSWARM-SIGNATURE check (before the body is parsed), the event, the
// bounty. The server (webhook.cpp) reads each request with apply_limits(), calls
// classify_request() (or classify_read_error()) and does what the Decision says: render the
// metrics, queue the bounty, count, log, answer with make_response(). The fuzzer
// (tests/fuzz/fuzz_webhook_request.cpp) runs the same functions on raw bytes.
#pragma once

#include "model/bounty.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

struct RequestRules {
  std::string secret;               // empty: requests are not signed (only with --insecure)
  std::vector<std::string> engines; // POST /<engine>; the first is also POST /
  std::size_t body_limit = 1 << 20;
  std::size_t header_limit = 16 << 10;
};

// Sets the rules' header and body limits on a parser about to read a request.
void apply_limits(RequestParser& parser, const RequestRules& rules);

// What a request counts as in pss_bounties_total{outcome}.
enum class BountyOutcome { none, rejected, busy, accepted };

struct Decision {
  enum class Kind {
    answer,  // answer with status and body (JSON)
    metrics, // GET /metrics: 200 with the Prometheus text, which the server renders
    close,   // no request was read (closed, timed out, not HTTP): close without answering
  };
  Kind kind = Kind::answer;
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string body;
  BountyOutcome outcome = BountyOutcome::none;
  std::string warning; // a line for the log, when not empty
  // A bounty accepted (202): queue it for this engine (index in RequestRules::engines).
  std::size_t engine = 0;
  std::optional<model::Bounty> bounty;
  std::string delivery; // X-POLYSWARM-DELIVERY, for logs
};

// Called once a bounty's signature is verified, before its body is parsed: may return a body
// to parse instead (the webhook moves a large data: artifact out to a file, so that the JSON
// parsed is small).
using BodyFilter = std::function<std::optional<std::string>(std::string_view body)>;

// The answer to a request read whole. `queue_has_room` is false when the queue is full or the
// server is stopping: a valid bounty then gets 503. Never throws (nor may `filter`).
Decision classify_request(const Request& req, const RequestRules& rules, bool queue_has_room,
                          const BodyFilter& filter = {});

// The answer when reading a request failed: 413 (body over the limit), 431 (headers over it),
// or close for anything else.
Decision classify_read_error(const boost::system::error_code& ec, const RequestRules& rules);

// The response for a decision that answers (kind answer or metrics; for metrics, `body` holds
// the rendered text): Server, Content-Type, Content-Length, and Allow on 405, Retry-After on
// 503. `version` is the request's (11 when none was read).
Response make_response(const Decision& d, unsigned version);

} // namespace pss::http

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

// Checks the framing of a request Beast read whole: returns bh::error::bad_transfer_encoding
// when a Transfer-Encoding leaves its end open to doubt (with a Content-Length, with a last
// coding other than chunked, with another coding, or in HTTP/1.0), where Beast took a length
// that a proxy in front of us may not (request smuggling, RFC 9112 §6.1, §6.3); {} otherwise.
// The server then handles the request as one that failed to read: classify_read_error().
boost::system::error_code check_framing(const Request& req);

// The answer when reading a request failed (or check_framing() refused it):
// - close without answering when no request was started (end of stream before its first
//   byte), or on a timeout or a socket error;
// - 413 for a body over the limit, 431 for headers over it;
// - 505 for a request line of an HTTP major version other than 1;
// - 501 for a transfer coding other than chunked (a request framed by a final chunked);
// - 400 for any other parse error, with a JSON error that names it.
// `partial` is what the parser read of the request before it failed (its header fields tell
// a second framing field from an invalid one); `unread` the bytes it left in the buffer,
// which start at the request line or header line it stopped at. Both may be empty (the
// answer is then less precise). After any answer the server closes the connection: where
// the request ended is not known.
Decision classify_read_error(const boost::system::error_code& ec, const RequestRules& rules,
                             const Request& partial = Request{}, std::string_view unread = {});

// The response for a decision that answers (kind answer or metrics; for metrics, `body` holds
// the rendered text): Server, Content-Type, Content-Length, and Allow on 405, Retry-After on
// 503. `version` is the request's (11 when none was read).
Response make_response(const Decision& d, unsigned version);

} // namespace pss::http

#include "http/webhook_request.hpp"

#include "http/metrics.hpp"
#include "util/hmac.hpp"

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <nlohmann/json.hpp>

namespace pss::http {

namespace bh = boost::beast::http;

namespace {

Decision answer(bh::status status, std::string body, BountyOutcome outcome = BountyOutcome::none) {
  Decision d;
  d.status = status;
  d.body = std::move(body);
  d.outcome = outcome;
  return d;
}

// {"error": message}. The message may quote the request's bytes, which need not be UTF-8:
// invalid sequences become U+FFFD (dump() would throw on them).
std::string error_json(const std::string& message) {
  return nlohmann::json({{"error", message}})
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Which engine a path names: "/" → the first, "/<engine>" → that one. Anything else (also a
// target that is not a path: "*", "http://host/", "clamav") names none.
std::optional<std::size_t> route(std::string_view target, const RequestRules& rules) {
  auto q = target.find('?');
  target = target.substr(0, q);
  if (!target.starts_with('/')) {
    return std::nullopt;
  }
  if (target == "/") {
    return rules.engines.empty() ? std::nullopt : std::optional<std::size_t>(0);
  }
  target.remove_prefix(1);
  if (!target.empty() && target.back() == '/') {
    target.remove_suffix(1);
  }
  for (std::size_t i = 0; i < rules.engines.size(); ++i) {
    if (rules.engines[i] == target) {
      return i;
    }
  }
  return std::nullopt;
}

Decision bad_request(const std::string& what) {
  return answer(bh::status::bad_request, error_json("bad request: " + what));
}

// The first line of `bytes` (all of them when no LF came yet), without its CR LF; `bare_lf`
// when it ended in LF alone.
struct Line {
  std::string_view text;
  bool bare_lf = false;
};

Line first_line(std::string_view bytes) {
  auto lf = bytes.find('\n');
  Line line{bytes.substr(0, lf)};
  line.bare_lf = lf != std::string_view::npos && !line.text.ends_with('\r');
  if (line.text.ends_with('\r')) {
    line.text.remove_suffix(1);
  }
  return line;
}

// The version a request line names, 10 × major + minor ("GET / HTTP/2.0" → 20), when it has
// the shape "method SP target SP HTTP/d.d".
std::optional<int> line_version(std::string_view line) {
  auto sp = line.find(' ');
  sp = sp == std::string_view::npos ? sp : line.find(' ', sp + 1);
  if (sp == std::string_view::npos) {
    return std::nullopt;
  }
  auto v = line.substr(sp + 1);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (v.size() != 8 || !v.starts_with("HTTP/") || !digit(v[5]) || v[6] != '.' || !digit(v[7])) {
    return std::nullopt;
  }
  return (v[5] - '0') * 10 + (v[7] - '0');
}

// "method SP target" and nothing after: an HTTP/0.9 request line.
bool http09_line(std::string_view line) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || sp + 1 == line.size()) {
    return false;
  }
  return std::all_of(line.begin() + static_cast<std::ptrdiff_t>(sp) + 1, line.end(),
                     [](char c) { return c > ' ' && c < 0x7f; });
}

// The transfer codings of all the request's Transfer-Encoding fields, in order, lower case,
// without their parameters.
std::vector<std::string> transfer_codings(const Request& req) {
  std::vector<std::string> out;
  auto range = req.equal_range(bh::field::transfer_encoding);
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      auto comma = list.find(',');
      auto item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      item = item.substr(0, item.find(';'));
      auto first = item.find_first_not_of(" \t");
      if (first == std::string_view::npos) {
        continue; // an empty list element, which a list may have
      }
      item = item.substr(first, item.find_last_not_of(" \t") - first + 1);
      std::string coding(item);
      std::transform(coding.begin(), coding.end(), coding.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.push_back(std::move(coding));
    }
  }
  return out;
}

// What is wrong with the Transfer-Encoding of a request (all its fields, or those read
// before a parse error); nullopt when it has none, or one ending in a single chunked. A
// request whose length a proxy may read otherwise is refused (RFC 9112 §6.1, §6.3).
std::optional<Decision> transfer_encoding_problem(const Request& req) {
  if (req.find(bh::field::transfer_encoding) == req.end()) {
    return std::nullopt;
  }
  if (req.find(bh::field::content_length) != req.end()) {
    return bad_request("both Content-Length and Transfer-Encoding");
  }
  if (req.version() < 11) {
    return bad_request("Transfer-Encoding in an HTTP/1.0 request");
  }
  auto codings = transfer_codings(req);
  if (codings.empty() || codings.back() != "chunked") {
    return bad_request("Transfer-Encoding does not end with chunked");
  }
  if (std::count(codings.begin(), codings.end(), "chunked") > 1) {
    return bad_request("Transfer-Encoding has chunked twice");
  }
  if (codings.size() > 1) {
    // The framing is sound; the coding under it is one we cannot undo (RFC 9112 §6.1).
    return answer(bh::status::not_implemented, error_json("transfer coding '" + codings.front() +
                                                          "' not implemented (only chunked)"));
  }
  return std::nullopt;
}

} // namespace

void apply_limits(RequestParser& parser, const RequestRules& rules) {
  parser.header_limit(static_cast<std::uint32_t>(rules.header_limit));
  parser.body_limit(rules.body_limit);
}

Decision classify_request(const Request& req, const RequestRules& rules, bool queue_has_room,
                          const BodyFilter& filter) {
  std::string_view target = req.target();
  if (req.method() == bh::verb::get &&
      (target == "/metrics" || target.rfind("/metrics?", 0) == 0)) {
    Decision d;
    d.kind = Decision::Kind::metrics;
    return d;
  }
  auto engine = route(target, rules);
  if (req.method() != bh::verb::get && req.method() != bh::verb::post) {
    return answer(bh::status::method_not_allowed, R"({"error":"use GET or POST"})");
  }
  if (!engine) {
    return answer(bh::status::not_found, error_json("no engine at " + std::string(target)));
  }
  if (req.method() == bh::verb::get) {
    return answer(bh::status::ok, R"({"status":"OK"})");
  }
  // Verified before the body is parsed, in constant time.
  if (!rules.secret.empty()) {
    auto sig = req[std::string_view("X-POLYSWARM-SIGNATURE")];
    if (sig.empty()) {
      return answer(bh::status::bad_request, R"({"error":"missing X-POLYSWARM-SIGNATURE"})",
                    BountyOutcome::rejected);
    }
    if (!signature_matches(rules.secret, req.body(), sig)) {
      auto d =
          answer(bh::status::unauthorized, R"({"error":"bad signature"})", BountyOutcome::rejected);
      d.warning = "request with a bad signature from delivery " +
                  std::string(req[std::string_view("X-POLYSWARM-DELIVERY")]);
      return d;
    }
  }
  auto event = req[std::string_view("X-POLYSWARM-EVENT")];
  if (event == "ping") {
    return answer(bh::status::ok, R"({"status":"OK"})");
  }
  if (event != "bounty") {
    return answer(bh::status::bad_request, error_json("unknown X-POLYSWARM-EVENT '" +
                                                      std::string(event) + "' (bounty or ping)"));
  }
  std::optional<std::string> filtered = filter ? filter(req.body()) : std::nullopt;
  auto b = model::parse_bounty(filtered ? *filtered : req.body());
  if (!b) {
    auto d = answer(bh::status::bad_request, R"({"bounty":"Invalid bounty request"})",
                    BountyOutcome::rejected);
    d.warning = "invalid bounty: " + b.error().message;
    return d;
  }
  if (!queue_has_room) {
    return answer(bh::status::service_unavailable, R"({"status":"BUSY"})", BountyOutcome::busy);
  }
  auto d = answer(bh::status::accepted, R"({"status":"ACCEPTED"})", BountyOutcome::accepted);
  d.engine = *engine;
  d.bounty = std::move(*b);
  d.delivery = std::string(req[std::string_view("X-POLYSWARM-DELIVERY")]);
  return d;
}

boost::system::error_code check_framing(const Request& req) {
  if (transfer_encoding_problem(req)) {
    return bh::error::bad_transfer_encoding;
  }
  return {};
}

Decision classify_read_error(const boost::system::error_code& ec, const RequestRules& rules,
                             const Request& partial, std::string_view unread) {
  // Beast reports end_of_stream only when not a byte of a request came; timeouts and socket
  // errors are of other categories. Nobody to answer, or nobody listening.
  if (ec.category() != bh::make_error_code(bh::error::end_of_stream).category() ||
      ec == bh::error::end_of_stream) {
    Decision d;
    d.kind = Decision::Kind::close;
    return d;
  }
  if (ec == bh::error::body_limit) {
    return answer(bh::status::payload_too_large,
                  R"({"error":"body over )" + std::to_string(rules.body_limit) + R"( bytes"})");
  }
  if (ec == bh::error::header_limit) {
    return answer(bh::status::request_header_fields_too_large, R"({"error":"headers too large"})");
  }
  Line line = first_line(unread);
  if (ec == bh::error::bad_version) {
    // 505 names a major version we do not speak (RFC 9110 §15.6.6); a minor one we do not
    // know is a 400 (Beast refuses HTTP/1.2 and later).
    auto v = line_version(line.text);
    if (v && *v / 10 != 1) {
      auto name = "HTTP/" + std::to_string(*v / 10) + "." + std::to_string(*v % 10);
      return answer(bh::status::http_version_not_supported,
                    error_json(name + " is not supported: use HTTP/1.1"));
    }
  }
  bool has_cl = partial.find(bh::field::content_length) != partial.end();
  bool has_te = partial.find(bh::field::transfer_encoding) != partial.end();
  if ((ec == bh::error::bad_content_length && has_te) ||
      (ec == bh::error::bad_transfer_encoding && has_cl)) {
    return bad_request("both Content-Length and Transfer-Encoding");
  }
  switch (static_cast<bh::error>(ec.value())) {
  case bh::error::bad_method:
  case bh::error::bad_target:
  case bh::error::bad_version:
  case bh::error::bad_field:
  case bh::error::bad_value:
  case bh::error::bad_line_ending:
    // The line the parser stopped at is the one at fault.
    if (line.bare_lf) {
      return bad_request("a line ends in LF without CR");
    }
    break;
  default:
    break;
  }
  switch (static_cast<bh::error>(ec.value())) {
  case bh::error::bad_method:
    return bad_request("invalid method");
  case bh::error::bad_target:
    return bad_request(http09_line(line.text)
                           ? "no HTTP version in the request line (HTTP/0.9 is not supported)"
                           : "invalid request target");
  case bh::error::bad_version: {
    auto v = line_version(line.text);
    return bad_request(v && *v > 11
                           ? "HTTP/1." + std::to_string(*v % 10) + " is not supported: use HTTP/1.1"
                           : "invalid HTTP version");
  }
  case bh::error::bad_field:
    return bad_request("invalid header line (no colon, or an invalid name)");
  case bh::error::bad_value:
    return bad_request("invalid character in a header value");
  case bh::error::bad_line_ending:
    return bad_request("a line ends in CR without LF");
  case bh::error::bad_content_length:
    return bad_request("invalid Content-Length");
  case bh::error::multiple_content_length:
    return bad_request("different Content-Length values");
  case bh::error::bad_transfer_encoding:
    if (auto d = transfer_encoding_problem(partial)) {
      return *d;
    }
    return bad_request("invalid Transfer-Encoding");
  case bh::error::bad_chunk:
  case bh::error::bad_chunk_extension:
    return bad_request("invalid chunked body");
  case bh::error::partial_message:
    return bad_request("the connection was closed before the request's end");
  default:
    return bad_request(ec.message());
  }
}

Response make_response(const Decision& d, unsigned version) {
  Response r{d.kind == Decision::Kind::metrics ? bh::status::ok : d.status, version};
  r.set(bh::field::server, "pssupervise");
  r.set(bh::field::content_type,
        d.kind == Decision::Kind::metrics ? k_metrics_content_type : "application/json");
  if (r.result() == bh::status::method_not_allowed) {
    r.set(bh::field::allow, "GET, POST");
  }
  if (r.result() == bh::status::service_unavailable) {
    r.set(bh::field::retry_after, "1");
  }
  r.body() = d.body;
  r.prepare_payload();
  return r;
}

} // namespace pss::http

#include "http/webhook_request.hpp"

#include "http/metrics.hpp"
#include "util/hmac.hpp"

#include <boost/beast/http/error.hpp>
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

Decision classify_read_error(const boost::system::error_code& ec, const RequestRules& rules) {
  if (ec == bh::error::body_limit) {
    return answer(bh::status::payload_too_large,
                  R"({"error":"body over )" + std::to_string(rules.body_limit) + R"( bytes"})");
  }
  if (ec == bh::error::header_limit) {
    return answer(bh::status::request_header_fields_too_large, R"({"error":"headers too large"})");
  }
  Decision d;
  d.kind = Decision::Kind::close;
  return d;
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

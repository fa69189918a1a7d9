// Answers go back to PolySwarm's response_url: a signed POST (X-POLYSWARM-SIGNATURE, the
// HMAC-SHA256 of the body with the webhook's secret, as PolySwarm signs its own). Transient
// failures are retried until the bounty expires; permanent ones are tried once. Deliveries run
// apart from the scans, on threads of their own, and can all be abandoned at once (a drain).
#pragma once

#include "util/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pss::http {

struct Delivery {
  std::string url;
  std::string body; // JSON
  std::map<std::string, std::string> headers;
  std::chrono::system_clock::time_point give_up_at; // the bounty's expiration
};

enum class DeliveryResult {
  delivered, // a 2xx answer
  refused,   // a permanent failure, tried once: 3xx/4xx other than 408/425/429, a scheme other
             // than http(s), a malformed URL, an address the policy refuses
  expired,   // transient failures until give_up_at
  abandoned, // abort() was called
};
std::string_view to_string(DeliveryResult r); // "delivered", "refused", "expired", "abandoned"

struct DeliveryOutcome {
  DeliveryResult result = DeliveryResult::expired;
  int attempts = 0;
  int last_status = 0;    // HTTP status of the last attempt, 0 if none
  std::string last_error; // why the last attempt failed
};

struct DelivererOptions {
  std::size_t concurrency = 16;        // POSTs at once (threads for blocking libcurl)
  bool allow_private_networks = false; // response_url follows the artifacts' address policy
  std::chrono::milliseconds attempt_timeout{std::chrono::seconds(10)}; // one POST, at most
};

class Deliverer {
public:
  explicit Deliverer(DelivererOptions opts);
  ~Deliverer(); // abort() what is left, join the threads
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  // POSTs d.body to d.url until a 2xx, a permanent failure, or give_up_at (at least one
  // attempt, even past it). Retries only transient failures (connection errors, timeouts, HTTP
  // 408, 425, 429, 5xx), after 250 ms doubling to 5 s, or the answer's Retry-After, never past
  // give_up_at. Retry waits run on the caller's executor, POSTs on the Deliverer's threads
  // (at most `concurrency` at once). Never throws.
  boost::asio::awaitable<DeliveryOutcome> deliver(Delivery d);
  // Ends every delivery soon (a POST in progress within about a second) as `abandoned`;
  // deliveries started later are abandoned at once. Call on the executor awaiting deliver().
  void abort();

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

// Whether an HTTP status is worth retrying: 408, 425, 429 and 5xx.
bool is_transient_status(int status);
// Retry-After (delay-seconds or an HTTP-date) as a wait from `now`; nullopt if unreadable.
std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

} // namespace pss::http

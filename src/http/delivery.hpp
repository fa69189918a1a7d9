// Answers go back to PolySwarm's response_url: a signed POST (X-POLYSWARM-SIGNATURE, the
// HMAC-SHA256 of the body with the webhook's secret, as PolySwarm signs its own), retried
// with back-off until the bounty expires.
#pragma once

#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <string>

namespace pss::http {

struct Delivery {
  std::string url;
  std::string body; // JSON
  std::map<std::string, std::string> headers;
  std::chrono::system_clock::time_point give_up_at; // the bounty's expiration
};

struct DeliveryOutcome {
  bool delivered = false;
  int attempts = 0;
  int last_status = 0;    // HTTP status of the last attempt, 0 if none
  std::string last_error; // why the last attempt failed
};

// One POST, blocking (libcurl): the HTTP status, or why there is none.
Result<int> post_once(const Delivery& d, std::chrono::milliseconds timeout);

// POSTs on `pool` (blocking calls stay off the I/O thread) until a 2xx answer or
// `give_up_at` (at least once, even past it); back-off 250 ms doubling to 5 s.
boost::asio::awaitable<DeliveryOutcome> deliver(boost::asio::any_io_executor pool, Delivery d);

} // namespace pss::http

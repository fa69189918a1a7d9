// `pssupervise webhook`: PolySwarm's bounty webhook. Each request is verified (HMAC-SHA256
// of the raw body, in constant time, before the body is parsed), answered at once (202 for
// a bounty accepted, 503 when too many wait), and each bounty then goes through three stages,
// each with its own bound, so that no bounty waits for another's network: its download (when
// the webhook fetches), its scan (a slot held only while an engine scans), and the delivery of
// its answer to response_url (retried apart from the scans). GET /metrics shows what it does
// (Prometheus text).
#pragma once

#include "artifact/fetch.hpp"
#include "backend/backend.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pss::http {

class Metrics;

struct WebhookOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string secret;               // empty: unsigned requests accepted (only with --insecure)
  std::vector<std::string> engines; // POST /<engine>; the first is also POST /
  std::size_t workers = 4;          // bounties scanned at once
  std::size_t queue_limit = 1000;   // accepted and not yet scanned; more → 503
  // Downloads at once, counting those done and waiting for a scan slot (their files).
  std::size_t fetch_concurrency = 16;
  std::size_t delivery_concurrency = 16; // answers POSTed at once
  // After stop(): what is not scanning by then is given up, deliveries are abandoned (each
  // logged with its bounty id); scans in flight still end (bounded by their timeouts).
  std::chrono::seconds drain_timeout{30};
  // Set: the webhook fetches http(s) artifacts itself (bounded by each bounty's deadline) and
  // spools a large data: artifact to a file as its request arrives; the backend gets the
  // file. Unset: the backend fetches (Celery: a worker elsewhere).
  std::optional<artifact::FetchOptions> fetch;
  bool allow_private_networks = false; // response_url: the same address policy as artifacts
  std::size_t remembered_ids = 100000; // bounty ids kept to answer repeats (within expiration)
  std::size_t body_limit = 1 << 20;
  std::size_t header_limit = 16 << 10;
  std::chrono::milliseconds read_timeout{std::chrono::seconds(10)}; // a request, once started
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)}; // between keep-alive requests
  std::chrono::seconds default_expiry{90};                          // a bounty without expiration
};

class Webhook {
public:
  // Each bounty goes to `backend` (started by the caller) for the one engine of its route;
  // /metrics shows the backend's engine states.
  Webhook(boost::asio::any_io_executor ex, WebhookOptions opts, backend::Backend& backend);
  ~Webhook();
  // Binds and listens (Error: the address is taken, ...); returns the port bound (for 0).
  Result<std::uint16_t> listen();
  // Serves until stop(); then drains: the bounties accepted go on being scanned and answered
  // for at most drain_timeout, then what is left is given up (logged).
  boost::asio::awaitable<void> run();
  void stop();
  // Bounties accepted and not yet answered (for the service manager's status line).
  std::size_t in_flight() const;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::http

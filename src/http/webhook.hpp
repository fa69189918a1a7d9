// `pssupervise webhook`: PolySwarm's bounty webhook. Each request is verified (HMAC-SHA256
// of the raw body, in constant time, before the body is parsed), answered at once (202 for
// a bounty queued, 503 when the bounded queue is full), and each bounty is scanned off the
// request path and answered at its response_url before its expiration. GET /metrics shows
// what it does (Prometheus text).
#pragma once

#include "backend/job.hpp"
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
  std::size_t body_limit = 1 << 20;
  std::size_t header_limit = 16 << 10;
  std::chrono::milliseconds read_timeout{std::chrono::seconds(10)}; // a request, once started
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)}; // between keep-alive requests
  std::chrono::seconds default_expiry{90};                          // a bounty without expiration
};

// Scans one bounty with one engine (by index in WebhookOptions::engines), through whichever
// backend the CLI chose. Must not throw; every bounty gets a result.
using Dispatch =
    std::function<boost::asio::awaitable<backend::JobResult>(std::size_t engine, backend::Job)>;

// Called for the engines' state in /metrics: {engine, state, restarts}.
struct EngineGauge {
  std::string engine;
  std::string state;
  int restarts = 0;
};
using EngineGauges = std::function<std::vector<EngineGauge>()>;

class Webhook {
public:
  Webhook(boost::asio::any_io_executor ex, WebhookOptions opts, Dispatch dispatch,
          EngineGauges gauges);
  ~Webhook();
  // Binds and listens (Error: the address is taken, ...); returns the port bound (for 0).
  Result<std::uint16_t> listen();
  // Serves until stop(); then waits for the bounties accepted to be answered (bounded by
  // their expirations).
  boost::asio::awaitable<void> run();
  void stop();

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::http

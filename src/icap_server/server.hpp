// `pssupervise icap`: an ICAP server (RFC 3507) in front of the engines, for proxies (Squid) and
// file services. One coroutine per connection, every wait bounded (idle keep-alive, a head once
// started, each read of a body, each write), at most max_connections at once: beyond, the
// connection idle the longest is closed to make room, or the new one is refused (503) when none
// is idle. A body goes to a temp file as it arrives (never into memory) and to the backend as a
// local artifact; the answer is icap_server/answer.hpp's.
#pragma once

#include "backend/backend.hpp"
#include "icap_server/answer.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace pss::icap_server {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 1344;
  std::optional<std::uint16_t> metrics_port; // GET /metrics on bind:metrics_port
  std::size_t max_connections = 1000;        // also the Max-Connections of OPTIONS
  std::size_t concurrency = 4;               // requests scanned at once
  std::uint64_t body_limit = 100ull << 20;   // larger: answered by on_unknown, unscanned
  OnUnknown on_unknown = OnUnknown::block;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)}; // before a request's first byte
  // A request's head once its first byte came; each read of its body; each write of an answer.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  std::chrono::seconds slot_timeout{300}; // a request waiting for a scan slot; then unknown
  std::chrono::seconds drain_timeout{30}; // after stop(): requests in flight, then closed
  std::filesystem::path temp_dir;         // the bodies' spool files
  std::string version;                    // for the Service field: "0.1.0"
};

class Server {
public:
  // `backend` is started by the caller (before listen(): the ISTag reads its engines' versions).
  Server(boost::asio::any_io_executor ex, ServerOptions opts, backend::Backend& backend);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the ICAP port (and the metrics port, if any); returns the ICAP port bound (for 0).
  Result<std::uint16_t> listen();
  std::optional<std::uint16_t> metrics_port() const;
  // Serves until stop(), then answers the requests in flight (for at most drain_timeout) and
  // returns once every connection is closed.
  boost::asio::awaitable<void> run();
  // No new connections or requests; idle connections are closed now.
  void stop();
  // The engines' definitions may have changed (a reload): the ISTag is made again.
  void definitions_changed();
  std::string istag() const;
  // Open connections, and requests being scanned (for the service manager's status line).
  std::size_t connections() const;
  std::size_t scanning() const;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::icap_server

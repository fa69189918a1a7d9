// The life the long-running front ends (`webhook`, `worker`, `icap`) share over a Backend:
// start it, serve until the first signal, reload definitions on SIGHUP or every N seconds,
// stop the backend last; and tell a service manager (systemd's notify protocol) each step:
// READY=1 once the engines answered and the service listens, RELOADING=1 / READY=1 around a
// reload, STOPPING=1 at the signal, WATCHDOG=1 from the event loop.
#pragma once

#include "backend/backend.hpp"

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace spdlog {
class logger;
}

namespace pss {
class CommandLoop;
}

namespace pss::cli {

// The service's part of the life run_service gives it.
struct ServiceHooks {
  // Once the backend has started: listen or connect, say so, then serve until stopped.
  // `begin` may throw (a port in use); `serve` returns once stop() has drained the service.
  std::function<boost::asio::awaitable<void>()> begin;
  std::function<boost::asio::awaitable<void>()> serve;
  // At the first SIGINT/SIGTERM, and again right after `begin` should one have come before.
  std::function<void()> stop;
  // After each reload of the definitions (optional).
  std::function<void()> reloaded;
  // What the service is doing, for the service manager's STATUS line (optional):
  // "listening on 127.0.0.1:8080; 2 bounties in flight".
  std::function<std::string()> status;
};

// Runs the service on `loop` to its end; rethrows what `begin` or `serve` threw, once the
// backend has stopped. `what` names what is drained in the signal's log line.
void run_service(CommandLoop& loop, backend::Backend& backend, spdlog::logger& log,
                 std::chrono::seconds update_interval, const std::string& what, ServiceHooks hooks);

} // namespace pss::cli

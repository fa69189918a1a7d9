#include "cli/service.hpp"

#include "util/command_loop.hpp"
#include "util/service_notify.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/logger.h>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

// "clamav, testvendor: listening on 127.0.0.1:8080; 2 bounties in flight"
std::string status_line(const backend::Backend& backend, const ServiceHooks& hooks) {
  std::string out;
  for (const auto& e : backend.engines()) {
    out += (out.empty() ? "" : ", ") + e.name;
  }
  if (hooks.status) {
    out += (out.empty() ? "" : ": ") + hooks.status();
  }
  return out;
}

} // namespace

void run_service(CommandLoop& loop, backend::Backend& backend, spdlog::logger& log,
                 std::chrono::seconds update_interval, const std::string& what,
                 ServiceHooks hooks) {
  // Read before any engine starts: they inherit our environment, and must not speak for us.
  const ServiceNotifier notifier = ServiceNotifier::from_environment();
  bool stop_requested = false;
  bool ended = false;
  auto ex = loop.executor();
  asio::steady_timer tick(ex);
  loop.on_signal([&](int sig) {
    log.warn("signal {}: no new {}; finishing those in flight", sig, what);
    stop_requested = true;
    notifier.stopping();
    hooks.stop();
  });
  loop.on_reload(
      [&](bool scheduled) -> asio::awaitable<void> {
        log.info("{}: reloading the engines' definitions",
                 scheduled ? "scheduled update" : "SIGHUP");
        notifier.reloading();
        co_await backend.reload(scheduled);
        if (hooks.reloaded) {
          hooks.reloaded();
        }
        if (!stop_requested) {
          notifier.ready(status_line(backend, hooks));
        }
      },
      update_interval);
  // WATCHDOG=1 comes from this loop, so a wedged loop stops it and the service manager
  // restarts us; the status line (what is in flight) goes with it. (The lambda outlives the
  // coroutine it makes: that reads its captures through it.)
  auto every = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          notifier.watchdog_interval().value_or(std::chrono::seconds(5))),
      std::chrono::milliseconds(1), std::chrono::seconds(5));
  auto beat = [&]() -> asio::awaitable<void> {
    std::string last;
    while (!ended) {
      if (notifier.watchdog_interval()) {
        notifier.watchdog();
      }
      if (auto now = status_line(backend, hooks); now != last && !stop_requested) {
        notifier.status(now);
        last = now;
      }
      tick.expires_after(every);
      co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  };
  if (notifier.enabled()) {
    asio::co_spawn(ex, beat(), asio::detached);
  }
  auto main_task = [&]() -> asio::awaitable<void> {
    std::exception_ptr ep;
    try {
      co_await backend.start();
      auto begin = hooks.begin();
      co_await std::move(begin);
      if (stop_requested) { // a signal came while the engines started
        hooks.stop();
      } else {
        // Engines answered and the service listens (or consumes): only now is it ready.
        notifier.ready(status_line(backend, hooks));
      }
      auto serve = hooks.serve();
      co_await std::move(serve);
    } catch (...) {
      ep = std::current_exception();
    }
    co_await backend.stop();
    ended = true;
    tick.cancel();
    if (ep) {
      std::rethrow_exception(ep);
    }
  };
  loop.run(main_task());
}

} // namespace pss::cli

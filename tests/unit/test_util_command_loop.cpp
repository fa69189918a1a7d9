// util::CommandLoop::on_reload: SIGHUP and the schedule run the handler one at a time, a
// request during a run is remembered once, and nothing starts once the main coroutine ended.
// Signals are raised from inside the loop; the tests wait on events, never on time.
#include "util/command_loop.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <doctest/doctest.h>
#include <functional>
#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Only bounds a wait, so that a broken loop fails a CHECK instead of hanging the test.
constexpr auto k_bound = 20s;

// Wakes a coroutine waiting for a condition whenever something it depends on changed.
class Notifier {
public:
  explicit Notifier(asio::any_io_executor ex) : m_timer(std::move(ex)) {}
  void notify() { m_timer.cancel(); }
  // True once `ready()`; false if it is still not after k_bound.
  asio::awaitable<bool> wait_until(std::function<bool()> ready) {
    m_timer.expires_after(k_bound);
    while (!ready()) {
      auto [ec] = co_await m_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        co_return ready(); // the bound
      }
    }
    co_return true;
  }

private:
  asio::steady_timer m_timer;
};

// Lets every handler that is ready now run, and those they make ready (a completion and what
// it starts take a few hops through the queue).
asio::awaitable<void> settle() {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < 50; ++i) {
    co_await asio::post(ex, asio::use_awaitable);
  }
}

// Counts the SIGHUPs the loop has seen: a signal_set of our own on the same io_context is
// told in the same pass as the loop's.
class HangupProbe {
public:
  explicit HangupProbe(asio::any_io_executor ex) : m_set(ex, SIGHUP), m_changed(ex) { wait(); }
  ~HangupProbe() { m_set.cancel(); }
  int seen() const { return m_seen; }
  // Raises SIGHUP and returns once the loop has seen it.
  asio::awaitable<bool> raise_and_wait() {
    const int target = m_seen + 1;
    std::raise(SIGHUP);
    co_return co_await m_changed.wait_until([this, target] { return m_seen >= target; });
  }

private:
  void wait() {
    m_set.async_wait([this](boost::system::error_code ec, int) {
      if (!ec) {
        ++m_seen;
        m_changed.notify();
        wait();
      }
    });
  }
  asio::signal_set m_set;
  Notifier m_changed;
  int m_seen = 0;
};

// What the handler saw: each call's `scheduled`, and the most calls running at once.
struct Calls {
  std::vector<bool> scheduled;
  int ended = 0;
  int running = 0;
  int most_at_once = 0;

  void begin(bool s) {
    scheduled.push_back(s);
    most_at_once = std::max(most_at_once, ++running);
  }
  void end() {
    --running;
    ++ended;
  }
};

} // namespace

TEST_CASE("util::CommandLoop::on_reload: a SIGHUP runs handler(false)") {
  pss::CommandLoop loop;
  Calls calls;
  Notifier changed(loop.executor());
  loop.on_reload([&](bool scheduled) -> asio::awaitable<void> {
    calls.begin(scheduled);
    calls.end();
    changed.notify();
    co_return;
  });
  loop.run([&]() -> asio::awaitable<void> {
    HangupProbe probe(co_await asio::this_coro::executor);
    for (int n = 1; n <= 2; ++n) {
      REQUIRE(co_await probe.raise_and_wait());
      CHECK(co_await changed.wait_until([&] { return calls.ended == n; }));
    }
  }());
  CHECK(calls.scheduled == std::vector<bool>{false, false});
}

TEST_CASE("util::CommandLoop::on_reload: one at a time; requests during a run are remembered "
          "once and run next") {
  pss::CommandLoop loop;
  Calls calls;
  Notifier changed(loop.executor());
  HangupProbe* probe = nullptr;
  loop.on_reload([&](bool scheduled) -> asio::awaitable<void> {
    calls.begin(scheduled);
    if (calls.scheduled.size() == 1) {
      // Three SIGHUPs while the first reload runs, each seen by the loop before it ends.
      for (int i = 0; i < 3; ++i) {
        CHECK(co_await probe->raise_and_wait());
      }
    }
    calls.end();
    changed.notify();
  });
  loop.run([&]() -> asio::awaitable<void> {
    HangupProbe p(co_await asio::this_coro::executor);
    probe = &p;
    REQUIRE(co_await p.raise_and_wait());
    CHECK(co_await changed.wait_until([&] { return calls.ended >= 2 && calls.running == 0; }));
    co_await settle(); // a third, wrongly queued, would have started by now
    CHECK(calls.ended == 2);
    CHECK(calls.running == 0);
    probe = nullptr;
  }());
  CHECK(calls.scheduled == std::vector<bool>{false, false});
  CHECK(calls.most_at_once == 1);
}

TEST_CASE("util::CommandLoop::on_reload: the schedule runs handler(true)") {
  pss::CommandLoop loop;
  Calls calls;
  Notifier changed(loop.executor());
  loop.on_reload(
      [&](bool scheduled) -> asio::awaitable<void> {
        calls.begin(scheduled);
        calls.end();
        changed.notify();
        co_return;
      },
      1s);
  loop.run([&]() -> asio::awaitable<void> {
    CHECK(co_await changed.wait_until([&] { return calls.ended >= 1; }));
  }());
  REQUIRE_FALSE(calls.scheduled.empty());
  CHECK(calls.scheduled.front() == true);
}

TEST_CASE("util::CommandLoop::on_reload: a handler that throws is logged, and the next SIGHUP "
          "still runs it") {
  pss::CommandLoop loop;
  Calls calls;
  Notifier changed(loop.executor());
  loop.on_reload([&](bool scheduled) -> asio::awaitable<void> {
    calls.begin(scheduled);
    calls.end();
    changed.notify();
    if (calls.scheduled.size() == 1) {
      throw std::runtime_error("the updater's host is down");
    }
    co_return;
  });
  CHECK_NOTHROW(loop.run([&]() -> asio::awaitable<void> {
    HangupProbe probe(co_await asio::this_coro::executor);
    REQUIRE(co_await probe.raise_and_wait());
    co_await settle(); // the first one's end, exception and all
    REQUIRE(co_await probe.raise_and_wait());
    CHECK(co_await changed.wait_until([&] { return calls.ended == 2; }));
  }()));
  CHECK(calls.scheduled.size() == 2);
}

TEST_CASE("util::CommandLoop::on_reload: a request remembered when the main coroutine ends "
          "never runs") {
  pss::CommandLoop loop;
  Calls calls;
  Notifier changed(loop.executor());
  HangupProbe* probe = nullptr;
  bool main_ended = false;
  loop.on_reload([&](bool scheduled) -> asio::awaitable<void> {
    calls.begin(scheduled);
    CHECK(co_await probe->raise_and_wait()); // remembered, to run next
    changed.notify();
    // The main coroutine ends while this reload runs; then its end reaches the loop.
    CHECK(co_await changed.wait_until([&] { return main_ended; }));
    co_await settle();
    calls.end();
  });
  loop.run([&]() -> asio::awaitable<void> {
    HangupProbe p(co_await asio::this_coro::executor);
    probe = &p;
    REQUIRE(co_await p.raise_and_wait());
    CHECK(co_await changed.wait_until([&] { return p.seen() == 2; }));
    main_ended = true;
    changed.notify();
  }());
  CHECK(calls.scheduled == std::vector<bool>{false});
  CHECK(calls.ended == 1);
}

// The supervisor's transitions, driven by events and an injected clock: no processes.
#include "supervisor/machine.hpp"

#include <doctest/doctest.h>

using namespace pss::supervisor;
using namespace std::chrono_literals;
using K = Event::Kind;
using A = Action::Kind;

namespace {

struct Harness {
  Machine m;
  Clock::time_point now{};
  explicit Harness(RestartPolicy p = {}) : m(p) {}

  std::vector<Action> on(K kind, std::string reason = {}) { return m.on({kind, now, reason}); }
  static bool has(const std::vector<Action>& as, A kind) {
    for (const auto& a : as) {
      if (a.kind == kind) {
        return true;
      }
    }
    return false;
  }
  static milliseconds delay_of(const std::vector<Action>& as) {
    for (const auto& a : as) {
      if (a.kind == A::schedule) {
        return a.delay;
      }
    }
    FAIL("no schedule action");
    return {};
  }
  // Start → ready.
  void up() {
    on(K::start);
    on(K::ready);
    REQUIRE(m.state() == State::ready);
  }
};

} // namespace

TEST_CASE("start, ready, stop, exited: the happy path") {
  Harness h;
  auto a = h.on(K::start);
  CHECK(h.m.state() == State::starting);
  CHECK(Harness::has(a, A::spawn));
  a = h.on(K::ready);
  CHECK(h.m.state() == State::ready);
  CHECK(Harness::has(a, A::notify));
  a = h.on(K::stop);
  CHECK(h.m.state() == State::stopping);
  CHECK(Harness::has(a, A::graceful_stop));
  a = h.on(K::exited, "exited with status 0");
  CHECK(h.m.state() == State::down);
  CHECK(h.m.restarts() == 0);
  CHECK(h.m.failure().empty());
}

TEST_CASE("a death while ready schedules a restart with doubling back-off, capped") {
  RestartPolicy p;
  p.min_delay = 100ms;
  p.max_delay = 500ms;
  p.max_deaths = 100;
  Harness h(p);
  h.up();
  std::vector<milliseconds> delays;
  for (int i = 0; i < 5; ++i) {
    h.now += 10ms;
    auto a = h.on(K::exited, "killed by signal 11 (SIGSEGV)");
    CHECK(h.m.state() == State::down);
    delays.push_back(Harness::delay_of(a));
    a = h.on(K::restart_due);
    CHECK(Harness::has(a, A::spawn));
    CHECK(h.m.state() == State::starting);
    h.on(K::ready);
  }
  CHECK(delays == std::vector<milliseconds>{100ms, 200ms, 400ms, 500ms, 500ms});
  CHECK(h.m.restarts() == 5);
  CHECK(h.m.last_exit() == "killed by signal 11 (SIGSEGV)");
}

TEST_CASE("a stable run resets the back-off") {
  RestartPolicy p;
  p.min_delay = 100ms;
  p.stable_after = 30s;
  Harness h(p);
  h.up();
  h.on(K::exited, "x");
  h.on(K::restart_due);
  h.on(K::ready);
  h.now += 1s;
  CHECK(Harness::delay_of(h.on(K::exited, "x")) == 200ms);
  h.on(K::restart_due);
  h.on(K::ready);
  h.now += 31s; // ready long enough: healthy again
  CHECK(Harness::delay_of(h.on(K::exited, "x")) == 100ms);
}

TEST_CASE("too many deaths within the window: failed, with the last reason") {
  RestartPolicy p;
  p.max_deaths = 3;
  p.window = 60s;
  Harness h(p);
  h.on(K::start);
  h.on(K::exited, "exited with status 3");
  h.on(K::restart_due);
  h.on(K::exited, "exited with status 3");
  h.on(K::restart_due);
  auto a = h.on(K::exited, "exited with status 3");
  CHECK(h.m.state() == State::failed);
  CHECK(Harness::has(a, A::notify));
  CHECK_FALSE(Harness::has(a, A::schedule));
  CHECK(h.m.failure() == "died 3 times within 60 s; last: exited with status 3");
  // Nothing restarts a failed engine by itself.
  CHECK(h.on(K::restart_due).empty());
  CHECK(h.m.state() == State::failed);
}

TEST_CASE("deaths older than the window are forgotten") {
  RestartPolicy p;
  p.max_deaths = 2;
  p.window = 10s;
  Harness h(p);
  h.up();
  h.on(K::exited, "x");
  h.on(K::restart_due);
  h.on(K::ready);
  h.now += 11s;
  h.on(K::exited, "x");
  CHECK(h.m.state() == State::down);
}

TEST_CASE("a start timeout kills it, and the kill reason is what is reported") {
  Harness h;
  h.on(K::start);
  auto a = h.on(K::start_timeout, "not ready within 5 s");
  REQUIRE(a.size() == 1);
  CHECK(a[0].kind == A::kill);
  CHECK(h.m.state() == State::starting);
  a = h.on(K::exited, "killed by signal 9 (SIGKILL)");
  CHECK(h.m.last_exit() == "not ready within 5 s (then killed by signal 9 (SIGKILL))");
  CHECK(Harness::has(a, A::schedule));
}

TEST_CASE("unhealthy while ready: killed, then restarted") {
  Harness h;
  h.up();
  CHECK_FALSE(h.m.doomed());
  auto a = h.on(K::unhealthy, "scan did not answer within 3 s");
  CHECK(Harness::has(a, A::kill));
  CHECK(h.m.doomed()); // still ready until its exit is seen, but not to be used
  a = h.on(K::exited, "killed by signal 9 (SIGKILL)");
  CHECK_FALSE(h.m.doomed());
  CHECK(Harness::has(a, A::schedule));
  CHECK(h.m.last_exit().starts_with("scan did not answer within 3 s"));
}

TEST_CASE("stop while a restart is pending cancels it") {
  Harness h;
  h.up();
  h.on(K::exited, "x");
  CHECK(h.m.state() == State::down);
  h.on(K::stop);
  CHECK(h.on(K::restart_due).empty());
  CHECK(h.m.state() == State::down);
}

TEST_CASE("stop while starting stops it and does not count a death") {
  RestartPolicy p;
  p.max_deaths = 1;
  Harness h(p);
  h.on(K::start);
  auto a = h.on(K::stop);
  CHECK(Harness::has(a, A::graceful_stop));
  h.on(K::exited, "exited with status 0");
  CHECK(h.m.state() == State::down);
  CHECK(h.m.failure().empty());
}

TEST_CASE("a failed spawn counts as a death") {
  RestartPolicy p;
  p.max_deaths = 2;
  Harness h(p);
  h.on(K::start);
  auto a = h.on(K::spawn_failed, "cannot start 'x': not found on PATH");
  CHECK(Harness::has(a, A::schedule));
  h.on(K::restart_due);
  h.on(K::spawn_failed, "cannot start 'x': not found on PATH");
  CHECK(h.m.state() == State::failed);
}

TEST_CASE("start after failed starts afresh") {
  RestartPolicy p;
  p.max_deaths = 1;
  Harness h(p);
  h.on(K::start);
  h.on(K::exited, "x");
  REQUIRE(h.m.state() == State::failed);
  auto a = h.on(K::start);
  CHECK(Harness::has(a, A::spawn));
  CHECK(h.m.state() == State::starting);
  CHECK(h.m.failure().empty());
}

TEST_CASE("events that do not apply are ignored") {
  Harness h;
  CHECK(h.on(K::ready).empty());
  CHECK(h.on(K::exited, "x").empty());
  CHECK(h.on(K::start_timeout).empty());
  CHECK(h.on(K::unhealthy).empty());
  CHECK(h.m.state() == State::down);
  h.up();
  CHECK(h.on(K::start).empty()); // already up
  CHECK(h.on(K::start_timeout).empty());
}

TEST_CASE("state names") {
  CHECK(to_string(State::down) == "down");
  CHECK(to_string(State::starting) == "starting");
  CHECK(to_string(State::ready) == "ready");
  CHECK(to_string(State::stopping) == "stopping");
  CHECK(to_string(State::failed) == "failed");
}

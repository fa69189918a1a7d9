// The supervisor's state machine: one transition function, no I/O, no clock of its own.
// The driver (service.hpp) feeds it events with the current time and carries out the
// actions it returns; unit tests feed it events directly.
//
//   down ──start──► starting ──ready──► ready ──stop──► stopping ──exited──► down
//     ▲                │                  │
//     └──restart_due───┴──exited──────────┘ (back-off; too many deaths ──► failed)
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::supervisor {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class State { down, starting, ready, stopping, failed };
std::string_view to_string(State s);

// When to restart and when to give up (defaults after systemd and s6; FIELD-NOTES §2.5).
struct RestartPolicy {
  milliseconds min_delay{100};       // first restart after a death
  milliseconds max_delay{30'000};    // the doubling stops here
  milliseconds stable_after{30'000}; // ready this long: the next death restarts at min_delay
  int max_deaths = 5;                // this many deaths within `window` → failed
  milliseconds window{60'000};
};

struct Event {
  enum class Kind {
    start,         // the user wants it running
    ready,         // the readiness probe passed
    exited,        // the process is gone (reason: "exited with status 3")
    spawn_failed,  // it could not even be started (reason)
    start_timeout, // not ready by the start deadline
    unhealthy,     // a health check or a scan found it wedged (reason)
    restart_due,   // the back-off delay has passed
    stop,          // the user wants it stopped
  };
  Kind kind;
  Clock::time_point now;
  std::string reason = {};
};

struct Action {
  enum class Kind {
    spawn,         // start the process, then probe it for readiness
    kill,          // stop the process now (reason says why); an `exited` event follows
    graceful_stop, // the engine's own shutdown, then SIGTERM, SIGKILL; `exited` follows
    schedule,      // send `restart_due` after `delay`
    notify,        // the state changed: wake whoever waits for ready/failed/down
  };
  Kind kind;
  milliseconds delay{0};
  std::string reason = {};
};

class Machine {
public:
  explicit Machine(RestartPolicy policy) : m_policy(policy) {}

  // The one transition function.
  std::vector<Action> on(const Event& e);

  State state() const { return m_state; }
  int restarts() const { return m_restarts; }
  // Why it failed (state failed), else empty.
  const std::string& failure() const { return m_failure; }
  // Why the last process ended ("exited with status 1", "not ready within 60 s").
  const std::string& last_exit() const { return m_last_exit; }
  std::optional<Clock::time_point> ready_since() const { return m_ready_since; }
  // Ready but condemned: a kill was asked for and its exit is not seen yet. Not to be used.
  bool doomed() const { return !m_kill_reason.empty(); }
  // The delay before the next restart, for a death now (exposed for tests and logs).
  milliseconds next_delay() const;

private:
  std::vector<Action> died(const Event& e);

  RestartPolicy m_policy;
  State m_state = State::down;
  bool m_want_up = false;                 // start requested and no stop since
  bool m_restart_pending = false;         // a restart_due is scheduled
  int m_restarts = 0;                     // spawns after the first
  int m_consecutive = 0;                  // deaths since the last stable run (drives the back-off)
  std::deque<Clock::time_point> m_deaths; // within the window
  std::optional<Clock::time_point> m_ready_since;
  std::string m_kill_reason; // why we killed it: reported instead of its exit status
  std::string m_last_exit;
  std::string m_failure;
};

} // namespace pss::supervisor

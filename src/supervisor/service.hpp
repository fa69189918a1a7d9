// One long-lived process kept alive: spawned, probed until ready, health-checked, restarted
// with back-off when it dies, given up on after too many deaths, and stopped gracefully.
// The decisions are the Machine's (machine.hpp); this file only carries them out on Asio.
#pragma once

#include "process/child.hpp"
#include "supervisor/machine.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace pss::supervisor {

// A check with a deadline: the service answers (ok) or why not.
using Probe = std::function<boost::asio::awaitable<Result<void>>(Clock::time_point deadline)>;

struct ServiceSpec {
  std::string name;    // the engine's name: the logger
  std::string program; // what runs, for messages: "clamd", "testvendor-server.exe"
  // The command of each start, built afresh (a new free port, for instance).
  std::function<Result<process::SpawnSpec>()> command;
  // Readiness: an output line matching this ECMAScript regex (empty: no line needed)...
  std::string ready_line;
  // ...then this probe passing (none: the line, or the process being up, is enough).
  Probe ready_probe;
  milliseconds start_timeout{60'000}; // per start, spawn to ready
  // Health: when ready, this probe every `health_interval`; `health_failures` failures in a
  // row mean the process is wedged and is restarted.
  Probe health_probe;
  milliseconds health_interval{10'000};
  milliseconds health_timeout{5'000};
  int health_failures = 2;
  // Graceful stop: the engine's own shutdown (if any, only when ready), then SIGTERM to the
  // process group, then SIGKILL after `stop_timeout`.
  Probe shutdown;
  milliseconds stop_timeout{10'000};
  // Called after each spawn (the JSON-RPC driver takes the stdio pipes here).
  std::function<void(process::Child&, int generation)> on_spawn;
  RestartPolicy restart;
};

struct ServiceStatus {
  State state = State::down;
  int pid = 0; // 0: no process
  std::optional<Clock::time_point> ready_since;
  int restarts = 0;
  int generation = 0; // increases with each spawn
  std::string last_exit;
  std::string failure;
};

class Service {
public:
  Service(boost::asio::any_io_executor ex, ServiceSpec spec);
  ~Service(); // a process still running is killed
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Starts it and waits until it is ready; Error (with its last output lines) if it fails
  // or is not ready within spec.start_timeout (it is then stopped).
  boost::asio::awaitable<Result<void>> start();
  // Waits until it is ready (e.g. during a restart), up to `deadline`: the generation of the
  // ready process, or why not (failed, stopped, not ready in time).
  boost::asio::awaitable<Result<int>> acquire(Clock::time_point deadline);
  // A user of generation `gen` found it broken (lost connection, a call past its deadline):
  // it is killed and restarted, unless that generation is already gone.
  void report_broken(int generation, const std::string& reason);
  // Stops it (graceful, then forced); returns once the process is reaped. Never throws.
  boost::asio::awaitable<void> stop();

  ServiceStatus status() const;
  const ServiceSpec& spec() const;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::supervisor

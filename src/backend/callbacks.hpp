// Callbacks (the spec's Analyzers section): commands run once per bounty and engine when the
// engine answered (on_success, with the Analysis) or could not (on_error, with the reason).
// An engine's author declares them in its manifest; they run where the engine runs (the
// local backend, a process worker, a Celery worker). The caller gives them to `analyze`;
// they run where the results arrive. Never a shell: argv only, the event as JSON on stdin.
#pragma once

#include "backend/job.hpp"
#include "engine/manifest.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pss::backend {

struct CallbackSpec {
  std::vector<std::string> on_success; // argv; ${VAR} expanded (ENGINE_DIR, the environment)
  std::vector<std::string> on_error;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  bool empty() const { return on_success.empty() && on_error.empty(); }
};

// Runs callbacks in order on a thread of their own, each bounded by its timeout; a failing
// callback is logged, never fatal, and never changes an answer.
class Callbacks {
public:
  Callbacks() = default;
  ~Callbacks(); // waits for the callbacks queued (each bounded by its timeout)
  Callbacks(const Callbacks&) = delete;
  Callbacks& operator=(const Callbacks&) = delete;

  // The same callbacks for every engine (the caller's), or one engine's (its manifest's).
  void set_for_all(CallbackSpec spec);
  void set_for_engine(const std::string& engine, CallbackSpec spec, std::filesystem::path dir);
  bool empty() const { return m_all.empty() && m_engines.empty(); }

  // Queues the callbacks that apply to each of the result's analyses.
  void fire(const JobResult& r);
  // Blocks until every queued callback has run.
  void drain();

  struct Event {
    std::vector<std::string> argv;
    std::string stdin_json;
    std::map<std::string, std::string> env;
    std::chrono::milliseconds timeout;
  };

private:
  void run();
  CallbackSpec m_all;
  std::map<std::string, std::pair<CallbackSpec, std::filesystem::path>> m_engines;
  std::mutex m_mu;
  std::condition_variable m_cv;
  std::deque<Event> m_queue;
  std::size_t m_running = 0;
  bool m_stop = false;
  std::thread m_thread;
};

// Splits a caller's command ("notify --to ops") on blanks: no shell, no quotes.
std::vector<std::string> split_command(const std::string& command);

} // namespace pss::backend

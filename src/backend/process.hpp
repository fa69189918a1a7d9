// The `process` backend: N worker processes that share nothing. Each worker
// (`pssupervise __worker`) starts its engines once, says `{"ready": true}`, then answers Jobs
// sent as JSON lines on its stdin with JobResult lines on its stdout (backend/job.hpp).
// A worker that dies is replaced; the jobs it held are retried once, each alone on a worker,
// and a job whose retry dies too is answered `unknown` with the reason. The worker's side is
// backend/process_worker.hpp; the lines between them, backend/job.hpp.
#pragma once

#include "artifact/fetch.hpp"
#include "backend/backend.hpp"

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pss::backend {

struct ProcessOptions {
  std::size_t workers = 1; // worker processes; never more than there are jobs
  // A worker's whole command line, program first: {"/proc/self/exe", ..., "__worker", ...}.
  std::vector<std::string> argv;
  // The engines the workers run, and where they are found: each worker gets its own
  // ${NAME}_RUNTIME_DIR (a subfolder of the engine's, else one in the worker's private temp
  // folder), so that no two clamd share a socket; it is removed when the worker is gone.
  std::vector<std::string> engines;
  std::filesystem::path engines_dir;
  // Standard input ("-") is read here, into a temp file: a worker's stdin is its job pipe.
  artifact::FetchOptions fetch;
  std::size_t in_flight = 2; // jobs sent to a worker ahead of its answers (it prefetches)
  std::chrono::seconds ready_timeout{1800}; // a worker starting its engines (Wine, big DBs)
  std::chrono::seconds stop_timeout{60};    // a worker stopping its engines, then SIGKILL
};

class ProcessBackend final : public Backend {
public:
  // Reads the engines' manifests (for their runtime dirs, products and vendors); an engine
  // that cannot be read fails in the workers, which say why.
  explicit ProcessBackend(ProcessOptions opts);
  ~ProcessBackend() override;
  ProcessBackend(const ProcessBackend&) = delete;
  ProcessBackend& operator=(const ProcessBackend&) = delete;

  const std::vector<EngineInfo>& engines() const override;
  // Service mode (a webhook, a Celery worker): starts `workers` workers and waits until each
  // is ready; they stay until stop(). Throws pss::Fatal with a worker's own reason ("while
  // starting engine clamav: ...") when one cannot start, after stopping the others.
  boost::asio::awaitable<void> start() override;
  // Batch mode (without start()): starts at most one worker per job, at least one, waits
  // until each is ready, runs every job, and returns once every worker is gone. Throws Fatal
  // as start() does.
  boost::asio::awaitable<void> run(std::vector<Job> jobs, ResultSink sink) override;
  // After start(): one job, sent to the workers; `unknown` if none is left.
  boost::asio::awaitable<JobResult> run_one(Job job) override;
  // An interrupt: sends no further job and stops the workers (SIGTERM: each stops its
  // engines); run() returns once they are gone. Jobs not answered by then get no result.
  void cancel() override;
  boost::asio::awaitable<std::vector<engine::UpdateOutcome>> reload(bool run_updaters) override;
  // Each engine as the workers last said (job.hpp, "states"): the best state among them (a
  // pool answers while one can), their counts summed with those of workers gone; a worker
  // that died counts as a restart of each engine.
  std::vector<EngineState> states() const override;
  // After start(): the jobs submitted are answered, then the workers go (EOF on their stdin).
  boost::asio::awaitable<void> stop() override;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::backend

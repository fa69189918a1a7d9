// The dispatch interface every front end uses (analyze, worker, webhook, and any later one):
// jobs in, one JobResult per job out, whatever runs the scans (backend/factory.hpp makes one by
// name: `local`, `process`, `celery`). A decorator (a result cache) wraps a Backend and is a
// Backend; no front end knows which one it has.
#pragma once

#include "backend/job.hpp"
#include "cache/key.hpp"
#include "engine/update.hpp"

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pss::backend {

using ResultSink = std::function<void(JobResult)>;

class Backend {
public:
  virtual ~Backend() = default;

  // The engines it answers for, in order; a Job's `engines` picks among them by name.
  virtual const std::vector<EngineInfo>& engines() const = 0;
  // Gets ready to scan (starts the engines, the worker processes, ...). Throws pss::Fatal
  // with the reason ("while starting engine clamav: ...") when it cannot. run() starts by
  // itself what it needs; run_one() needs start().
  virtual boost::asio::awaitable<void> start() = 0;
  // Runs every job; `sink` gets each result as soon as it is ready (any order), exactly once
  // per job (none after cancel()). A job's failure is an `unknown` answer, never an exception.
  virtual boost::asio::awaitable<void> run(std::vector<Job> jobs, ResultSink sink) = 0;
  // One job now (a Celery task, a webhook bounty), concurrently with others.
  virtual boost::asio::awaitable<JobResult> run_one(Job job) = 0;
  // The answer to a job whose bounty names its sha256 when a result cache has it for every
  // engine asked, before the caller downloads anything; nullopt: run the job.
  virtual boost::asio::awaitable<std::optional<JobResult>> answer_from_cache(const Job& job) {
    (void)job;
    co_return std::nullopt;
  }
  // An interrupt: no further job is started; those in flight end as stop() hastens them.
  virtual void cancel() = 0;
  // Stops what start() or run() started; waits for it; never throws, idempotent.
  virtual boost::asio::awaitable<void> stop() = 0;
  // Whether the scans run on this host, so that a job may carry its artifact as a local file
  // (Job::fetched) that the front end downloaded or spooled; false: the bytes must travel
  // with the bounty (a Celery worker elsewhere fetches for itself).
  virtual bool scans_here() const { return true; }
  // New definitions (SIGHUP, --update-interval): each engine's updater first when
  // `run_updaters` (an engine without one is only reloaded), then a reload that drops no job;
  // a failure leaves the old definitions serving. The outcomes of the engines reloaded here;
  // none when they run elsewhere (the Celery workers reload their own).
  virtual boost::asio::awaitable<std::vector<engine::UpdateOutcome>> reload(bool run_updaters) {
    (void)run_updaters;
    co_return std::vector<engine::UpdateOutcome>{};
  }
  // The engines' state for /metrics (supervised servers); empty when it cannot know.
  virtual std::vector<EngineState> states() const { return {}; }
  // What an answer of `engine` depends on besides the artifact (versions, settings), for a
  // result cache (backend/cached.hpp); nullopt when the scans run elsewhere (their processes
  // keep their own cache) or the engine reports no definitions version (never cached).
  virtual std::optional<cache::Identity> identity(const std::string& engine) const {
    (void)engine;
    return std::nullopt;
  }
};

} // namespace pss::backend

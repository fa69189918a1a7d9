// The `local` backend: every bounty scanned in this process, `concurrency` at a time.
// Fetching, hashing and libmagic run on a thread pool; engine I/O on the caller's executor.
#pragma once

#include "artifact/fetch.hpp"
#include "backend/job.hpp"
#include "engine/engine.hpp"

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace pss::backend {

struct LocalOptions {
  std::size_t concurrency = 1;
  artifact::FetchOptions fetch;
  std::chrono::seconds scan_timeout{0}; // 0: each engine's own scan_timeout
};

using ResultSink = std::function<void(JobResult)>;

class LocalBackend {
public:
  LocalBackend(LocalOptions opts, std::vector<engine::Engine*> engines);
  ~LocalBackend();

  // Runs every job; `sink` gets each result as soon as it is ready (any order), exactly once
  // per job. Never throws for a job's failure: that is an `unknown` result.
  boost::asio::awaitable<void> run(std::vector<Job> jobs, ResultSink sink);
  // Starts no further job (an interrupt): run() returns once the scans in flight end, which
  // stopping the engines hastens. Jobs not started get no result.
  void cancel();
  // One job, now (a Celery task, a webhook bounty): fetched, then scanned by every engine.
  boost::asio::awaitable<JobResult> run_one(Job job);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// Deadline for one bounty: its expiration if sooner than now + timeout.
// Whether these engines need an artifact's mimetype (one of them scans only some categories).
bool engines_need_mimetype(const std::vector<engine::Engine*>& engines);

std::chrono::steady_clock::time_point bounty_deadline(const model::Bounty& b,
                                                      std::chrono::milliseconds timeout);

} // namespace pss::backend

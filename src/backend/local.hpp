// The `local` backend: every bounty scanned in this process, `concurrency` at a time.
// Fetching, hashing and libmagic run on a thread pool; engine I/O on the caller's executor.
#pragma once

#include "artifact/fetch.hpp"
#include "backend/backend.hpp"
#include "engine/engine.hpp"
#include "engine/engine_set.hpp"

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <vector>

namespace pss::backend {

struct LocalOptions {
  std::size_t concurrency = 1;
  artifact::FetchOptions fetch;
  std::chrono::seconds scan_timeout{0}; // 0: each engine's own scan_timeout
  // libmagic only when an engine's categories need the mimetype (nothing prints the bounty)
  bool identify_only_if_needed = false;
  // A local file's sha256 only when an engine or a callback uses it or a bounty gives one to
  // check (nothing prints the bounty, no result cache): otherwise it is not read before the
  // scan
  bool digest_only_if_needed = false;
};

class LocalBackend final : public Backend {
public:
  // Scans with engines it does not own: started and stopped by the caller (start() and stop()
  // leave them alone).
  LocalBackend(LocalOptions opts, std::vector<engine::Engine*> engines);
  // Owns its engines: start() starts them (run() too, if not yet), stop() stops them.
  LocalBackend(LocalOptions opts, std::unique_ptr<engine::EngineSet> engines);
  ~LocalBackend() override;

  const std::vector<EngineInfo>& engines() const override;
  boost::asio::awaitable<void> start() override;
  // Each job fetched on the pool while the previous one is scanned; its engines scan it
  // concurrently, each answering on its own.
  boost::asio::awaitable<void> run(std::vector<Job> jobs, ResultSink sink) override;
  boost::asio::awaitable<JobResult> run_one(Job job) override;
  // Starts no further job: run() returns once the scans in flight end, which stopping the
  // engines hastens. Jobs not started get no result.
  void cancel() override;
  boost::asio::awaitable<void> stop() override;
  std::vector<EngineState> states() const override;
  boost::asio::awaitable<std::vector<engine::UpdateOutcome>> reload(bool run_updaters) override;
  std::optional<cache::Identity> identity(const std::string& engine) const override;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// Whether these engines need an artifact's mimetype (one of them scans only some categories).
bool engines_need_mimetype(const std::vector<engine::Engine*>& engines);

} // namespace pss::backend

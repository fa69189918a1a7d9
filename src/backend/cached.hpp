// The result cache as a decorator: wraps any Backend that knows its engines' identity
// (Backend::identity) and answers from the store (cache/store.hpp) when the same bytes were
// answered by the same engine, version, definitions and settings before. Front ends hold it
// as a plain Backend. Only definite answers are stored (never `unknown`: errors, timeouts,
// skips), without their bid, which each bounty's rules and phase decide again.
#pragma once

#include "artifact/fetch.hpp"
#include "backend/backend.hpp"
#include "backend/local.hpp"
#include "cache/store.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace pss::backend {

struct CacheOptions {
  // "" (the default file), "off", a file path, or "redis://host:port[/db]".
  std::string where;
  std::chrono::seconds ttl{7 * 24 * 3600};
  bool rescan = false;         // ignore hits, store the new answers
  std::size_t concurrency = 1; // run(): jobs at once (the inner backend's)
};

// How a cache reads local inputs for a local backend with these options: libmagic only when
// the bounty is shown (a hit scans nothing, so no engine needs it).
artifact::FetchOptions cache_fetch_options(const LocalOptions& local);

// ${XDG_CACHE_HOME:-~/.cache}/pssupervise/results.sqlite
std::filesystem::path default_cache_path();

// The store `opts.where` names; nullptr for "off". One that cannot be opened is a warning and
// nullptr: scans go on without a cache.
std::unique_ptr<cache::Store> open_cache_store(const CacheOptions& opts);

struct CacheCount {
  std::string engine;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
};

class CachedBackend final : public Backend {
public:
  // `fetch`: how the inner backend reads a job's input, so that a local file is read (and
  // hashed) once, here, under the same policy; `identify` when the answers show the bounty's
  // mimetype (cache_fetch_options()).
  CachedBackend(std::unique_ptr<Backend> inner, std::unique_ptr<cache::Store> store,
                CacheOptions opts, artifact::FetchOptions fetch);
  ~CachedBackend() override;

  const std::vector<EngineInfo>& engines() const override;
  boost::asio::awaitable<void> start() override;
  // Jobs whose every engine hits are answered at once (a bounty that names its sha256 without
  // fetching it); the others go to the inner backend for the engines that missed.
  boost::asio::awaitable<void> run(std::vector<Job> jobs, ResultSink sink) override;
  boost::asio::awaitable<JobResult> run_one(Job job) override;
  boost::asio::awaitable<std::optional<JobResult>> answer_from_cache(const Job& job) override;
  void cancel() override;
  boost::asio::awaitable<void> stop() override;
  bool scans_here() const override;
  boost::asio::awaitable<std::vector<engine::UpdateOutcome>> reload(bool run_updaters) override;
  std::vector<EngineState> states() const override;
  std::optional<cache::Identity> identity(const std::string& engine) const override;

  // Lookups so far, by engine (pss_cache_lookups_total).
  std::vector<CacheCount> counts() const;

  struct Impl;

private:
  std::unique_ptr<Impl> m_impl;
};

} // namespace pss::backend

#include "backend/cached.hpp"

#include "backend/answers.hpp"
#include "backend/look_ahead.hpp"
#include "cache/redis_store.hpp"
#include "cache/sqlite_store.hpp"
#include "util/iso8601.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <mutex>
#include <set>

namespace pss::backend {

namespace asio = boost::asio;
namespace fs = std::filesystem;

fs::path default_cache_path() {
  fs::path base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
    base = x;
  } else if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    base = fs::path(h) / ".cache";
  } else {
    base = "/root/.cache";
  }
  return base / "pssupervise" / "results.sqlite";
}

artifact::FetchOptions cache_fetch_options(const LocalOptions& local) {
  artifact::FetchOptions f = local.fetch;
  f.identify = local.fetch.identify && !local.identify_only_if_needed;
  f.digest = true; // the key
  return f;
}

std::unique_ptr<cache::Store> open_cache_store(const CacheOptions& opts) {
  if (opts.where == "off") {
    return nullptr;
  }
  if (opts.where.rfind("redis://", 0) == 0 || opts.where.rfind("rediss://", 0) == 0) {
    auto store = cache::RedisStore::open(opts.where);
    if (!store) {
      log::get("cache")->warn("{}; scanning without a cache", store.error().message);
      return nullptr;
    }
    return std::move(*store);
  }
  const fs::path path = opts.where.empty() ? default_cache_path() : fs::path(opts.where);
  auto store = cache::SqliteStore::open(path);
  if (!store) {
    log::get("cache")->warn("{}; scanning without a cache", store.error().message);
    return nullptr;
  }
  return std::move(*store);
}

struct CachedBackend::Impl {
  std::unique_ptr<Backend> inner;
  std::unique_ptr<cache::Store> store;
  CacheOptions opts;
  artifact::FetchOptions fetch;
  asio::thread_pool pool{1}; // reads and hashes local inputs off the I/O thread
  mutable std::mutex counts_mutex;
  std::map<std::string, CacheCount> counts;
  std::shared_ptr<spdlog::logger> log = log::get("cache");

  // A job once looked up: what the cache answered, and what is left for the inner backend.
  struct Looked {
    Job job;                        // for the inner backend: engines narrowed to the misses
    std::vector<std::string> asked; // every engine the job asked for, in order
    std::map<std::string, model::Analysis> hits;
    std::optional<artifact::Artifact> artifact; // read here (a local input), for a bounty
    bool answered() const { return !asked.empty() && hits.size() == asked.size(); }
  };

  bool cancelled = false;

  // A lookup started ahead of its turn.
  struct Ahead {
    Ahead(asio::any_io_executor ex, Job j)
        : ready(std::move(ex), std::chrono::steady_clock::time_point::max()), job(std::move(j)) {}
    asio::steady_timer ready; // cancelled when done
    Job job;                  // a copy, to answer it should the lookup fail
    std::optional<Looked> result;
    std::exception_ptr error;
  };

  std::shared_ptr<Ahead> look_ahead(Job job, asio::any_io_executor ex) {
    auto a = std::make_shared<Ahead>(ex, job);
    asio::co_spawn(ex, look_up(std::move(job)), [a](std::exception_ptr ep, Looked l) {
      a->error = ep;
      if (!ep) {
        a->result = std::move(l);
      }
      a->ready.cancel();
    });
    return a;
  }

  static asio::awaitable<Looked> looked(std::shared_ptr<Ahead> a) {
    while (!a->result && !a->error) {
      co_await a->ready.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (a->error) {
      std::rethrow_exception(a->error);
    }
    co_return std::move(*a->result);
  }

  void count(const std::string& engine, bool hit) {
    std::lock_guard lock(counts_mutex);
    auto& c = counts[engine];
    c.engine = engine;
    ++(hit ? c.hits : c.misses);
  }

  static asio::awaitable<Result<std::string>> hash_task(std::filesystem::path path) {
    co_return sha256_file(path);
  }

  static asio::awaitable<Result<artifact::Artifact>> read_task(std::string source,
                                                               const artifact::FetchOptions* o) {
    co_return artifact::fetch(source, *o);
  }

  // The sha256 of the job's bytes when it is known without a download: the bounty's, the
  // caller's hash, or a local input's (read and hashed here, once: the inner backend gets it
  // as a fetched artifact).
  asio::awaitable<std::string> sha256_of(Looked& l) {
    Job& job = l.job;
    if (job.bounty && job.bounty->sha256) {
      co_return *job.bounty->sha256;
    }
    if (job.fetched && !job.fetched->sha256.empty()) {
      co_return job.fetched->sha256;
    }
    if (job.fetched) { // the caller's own file (a spooled data: artifact): hashed here
      auto hashing = hash_task(job.fetched->path);
      auto h = co_await asio::co_spawn(pool, std::move(hashing), asio::use_awaitable);
      if (h) {
        job.fetched->sha256 = *h;
      }
      co_return h ? *h : std::string();
    }
    if (job.artifact_type != model::ArtifactType::file) {
      co_return std::string(); // a URL artifact is its text, not bytes to look up
    }
    if (job.bounty && job.bounty->expiration &&
        *job.bounty->expiration <= std::chrono::system_clock::now()) {
      co_return std::string(); // the inner backend answers it `unknown` without a fetch
    }
    // A bounty's URI or a local input: fetched here under the same policy (the inner backend
    // gets the file), hashed, then looked up.
    auto reading = read_task(job_source(job), &fetch);
    auto r = co_await asio::co_spawn(pool, std::move(reading), asio::use_awaitable);
    if (!r) {
      job.error = r.error().message; // answered as the inner backend answers a failed fetch
      co_return std::string();
    }
    FetchedArtifact f;
    f.path = r->path;
    f.size = r->size;
    f.sha256 = r->sha256;
    f.mimetype = r->mimetype;
    if (r->temp) { // stdin: the bytes live in our temp file until the job is answered
      f.owner = std::make_shared<const TempFile>(std::move(*r->temp));
      r->temp.reset();
    }
    job.fetched = std::move(f);
    l.artifact = std::move(*r);
    co_return l.artifact->sha256;
  }

  std::optional<model::Analysis> lookup(const std::string& sha256, const std::string& engine,
                                        bool counted) {
    auto id = inner->identity(engine);
    if (!id) {
      return std::nullopt; // not cacheable here: not counted either
    }
    std::optional<cache::Entry> e;
    if (!opts.rescan) {
      e = store->get(cache::result_key(sha256, engine, *id));
    }
    std::optional<model::Analysis> out;
    if (e) {
      try {
        auto a = model::analysis_from_json(nlohmann::json::parse(e->value));
        if (a) {
          out = std::move(*a);
          out->metadata["cached_at"] = format_iso8601(
              std::chrono::system_clock::time_point(std::chrono::seconds(e->stored_at)));
        }
      } catch (const std::exception&) {
        // Not ours or damaged: a miss, and the new answer replaces it.
      }
    }
    if (counted) {
      count(engine, out.has_value());
    }
    return out;
  }

  // `counted`: false for a look before the download, which run_one() repeats on a miss.
  asio::awaitable<Looked> look_up(Job job, bool counted = true) {
    Looked l;
    l.job = std::move(job);
    if (l.job.engines.empty()) {
      for (const auto& e : inner->engines()) {
        l.asked.push_back(e.name);
      }
    } else {
      l.asked = l.job.engines;
    }
    if (l.job.error) {
      co_return l;
    }
    const std::string sha256 = co_await sha256_of(l);
    if (sha256.empty() || l.job.error) {
      co_return l;
    }
    std::vector<std::string> missed;
    for (const auto& name : l.asked) {
      if (auto a = lookup(sha256, name, counted)) {
        l.hits.emplace(name, std::move(*a));
      } else {
        missed.push_back(name);
      }
    }
    if (!l.hits.empty()) {
      l.job.engines = std::move(missed);
    }
    co_return l;
  }

  // A job every engine answered from the cache: its bounty made as a scan would make it.
  JobResult from_cache(Looked& l) {
    JobResult r;
    r.index = l.job.index;
    r.input = l.job.input;
    r.bounty = job_bounty(l.job);
    if (l.artifact) {
      if (!l.job.bounty) {
        complete_local_bounty(r.bounty, l.job, *l.artifact);
      }
      r.bounty.sha256 = l.artifact->sha256;
      if (!r.bounty.mimetype && !l.artifact->mimetype.empty()) {
        r.bounty.mimetype = l.artifact->mimetype;
      }
    } else if (!r.bounty.sha256 && l.job.fetched) {
      r.bounty.sha256 = l.job.fetched->sha256;
    }
    for (const auto& name : l.asked) {
      model::Analysis a = l.hits.at(name);
      model::finalize(a, r.bounty);
      r.analyses.push_back({name, std::move(a)});
    }
    return r;
  }

  // Stores what the inner backend answered, then puts the cached answers back in the job's
  // order.
  JobResult merge(Looked& l, JobResult r) {
    if (r.bounty.sha256) {
      for (const auto& ea : r.analyses) {
        store_answer(*r.bounty.sha256, ea);
      }
    }
    if (l.hits.empty()) {
      return r;
    }
    std::map<std::string, model::Analysis> scanned;
    for (auto& ea : r.analyses) {
      scanned.emplace(ea.engine, std::move(ea.analysis));
    }
    r.analyses.clear();
    for (const auto& name : l.asked) {
      if (auto h = l.hits.find(name); h != l.hits.end()) {
        model::Analysis a = h->second;
        model::finalize(a, r.bounty);
        r.analyses.push_back({name, std::move(a)});
      } else if (auto s = scanned.find(name); s != scanned.end()) {
        r.analyses.push_back({name, std::move(s->second)});
      }
    }
    return r;
  }

  // Only a definite answer, given by the definitions the engine has now (a reload may have
  // come during the scan: then its key is not known for sure, and it is not stored).
  void store_answer(const std::string& sha256, const EngineAnalysis& ea) {
    const model::Analysis& a = ea.analysis;
    if (a.result == model::Verdict::unknown || !a.analysis_definition_version ||
        a.metadata.contains("cached_at")) {
      return;
    }
    auto id = inner->identity(ea.engine);
    if (!id || id->definitions_version != *a.analysis_definition_version ||
        id->engine_version != a.analysis_engine_version.value_or("")) {
      return;
    }
    nlohmann::json j = model::to_json(a);
    j.erase("bid");
    store->put(cache::result_key(sha256, ea.engine, *id), j.dump(), opts.ttl);
  }
};

CachedBackend::CachedBackend(std::unique_ptr<Backend> inner, std::unique_ptr<cache::Store> store,
                             CacheOptions opts, artifact::FetchOptions fetch)
    : m_impl(std::make_unique<Impl>()) {
  m_impl->inner = std::move(inner);
  m_impl->store = std::move(store);
  m_impl->opts = std::move(opts);
  m_impl->fetch = std::move(fetch);
}

CachedBackend::~CachedBackend() {
  m_impl->pool.join();
}

const std::vector<EngineInfo>& CachedBackend::engines() const {
  return m_impl->inner->engines();
}

asio::awaitable<void> CachedBackend::start() {
  co_await m_impl->inner->start();
}

asio::awaitable<JobResult> CachedBackend::run_one(Job job) {
  auto l = co_await m_impl->look_up(std::move(job));
  if (l.answered()) {
    co_return m_impl->from_cache(l);
  }
  // Named first: GCC 12 may destroy a temporary awaited in place twice.
  auto scan = m_impl->inner->run_one(l.job);
  JobResult r = co_await std::move(scan);
  co_return m_impl->merge(l, std::move(r));
}

asio::awaitable<void> CachedBackend::run(std::vector<Job> jobs, ResultSink sink) {
  // The identities come from started engines.
  co_await m_impl->inner->start();
  auto ex = co_await asio::this_coro::executor;
  Impl& s = *m_impl;
  // As the local backend does: each worker looks its next job up (reads and hashes it on the
  // pool) while the current one is scanned, so a miss costs the lookup and the write only.
  co_await run_look_ahead(
      jobs, s.opts.concurrency, s.cancelled, sink,
      [&](Job job) { return s.look_ahead(std::move(job), ex); },
      [&](const std::shared_ptr<Impl::Ahead>& a) -> asio::awaitable<JobResult> {
        Impl::Looked l = co_await s.looked(a);
        if (l.answered()) {
          co_return s.from_cache(l);
        }
        auto scan = s.inner->run_one(l.job);
        co_return s.merge(l, co_await std::move(scan));
      },
      [&](const std::shared_ptr<Impl::Ahead>& a, const std::string& what) {
        // A bug must not lose the job: answered unknown, as the inner backend would.
        return unknown_result(a->job, job_bounty(a->job), engines_for(a->job, s.inner->engines()),
                              "internal error: " + what);
      });
}

asio::awaitable<std::optional<JobResult>> CachedBackend::answer_from_cache(const Job& job) {
  if (!job.bounty || !job.bounty->sha256) {
    co_return std::nullopt; // finding the bytes' hash would mean fetching them
  }
  auto l = co_await m_impl->look_up(job, false);
  if (!l.answered()) {
    co_return std::nullopt;
  }
  for (const auto& name : l.asked) {
    m_impl->count(name, true);
  }
  co_return m_impl->from_cache(l);
}

void CachedBackend::cancel() {
  m_impl->cancelled = true;
  m_impl->inner->cancel();
}

asio::awaitable<void> CachedBackend::stop() {
  co_await m_impl->inner->stop();
}

bool CachedBackend::scans_here() const {
  return m_impl->inner->scans_here();
}

asio::awaitable<std::vector<engine::UpdateOutcome>> CachedBackend::reload(bool run_updaters) {
  // Nothing to clear: new definitions make new keys.
  co_return co_await m_impl->inner->reload(run_updaters);
}

std::vector<EngineState> CachedBackend::states() const {
  auto out = m_impl->inner->states();
  std::lock_guard lock(m_impl->counts_mutex);
  for (auto& s : out) {
    if (auto c = m_impl->counts.find(s.engine); c != m_impl->counts.end()) {
      s.cache_hits = c->second.hits;
      s.cache_misses = c->second.misses;
    }
  }
  return out;
}

std::optional<cache::Identity> CachedBackend::identity(const std::string& engine) const {
  return m_impl->inner->identity(engine);
}

std::vector<CacheCount> CachedBackend::counts() const {
  std::lock_guard lock(m_impl->counts_mutex);
  std::vector<CacheCount> out;
  for (const auto& [_, c] : m_impl->counts) {
    out.push_back(c);
  }
  return out;
}

} // namespace pss::backend

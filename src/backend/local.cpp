#include "backend/local.hpp"

#include "artifact/magic.hpp"
#include "backend/answers.hpp"
#include "backend/callbacks.hpp"
#include "backend/look_ahead.hpp"
#include "cache/key.hpp"
#include "model/bounty.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>

namespace pss::backend {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

bool engines_need_sha256(const std::vector<engine::Engine*>& engines) {
  return std::ranges::any_of(engines, [](const engine::Engine* e) { return e->uses_sha256(); });
}

bool engines_need_mimetype(const std::vector<engine::Engine*>& engines) {
  return std::ranges::any_of(engines, [](const engine::Engine* e) {
    const auto& c = e->manifest().categories;
    return std::ranges::none_of(c, [](const std::string& s) { return s == "*"; });
  });
}

struct LocalBackend::Impl {
  LocalOptions opts;
  std::unique_ptr<engine::EngineSet> owned; // null: the caller's engines
  bool started = false;
  std::vector<engine::Engine*> engines; // after start(): one that failed is a stand-in
  std::vector<EngineInfo> infos;
  asio::thread_pool pool;
  std::shared_ptr<spdlog::logger> log = log::get("local");
  bool cancelled = false;
  Callbacks callbacks; // the engines' own (their manifests'), run where they scan
  std::map<std::string, std::pair<int, int>> updates;  // by engine: reloads ok, failed
  mutable std::map<std::string, std::string> settings; // by engine: cache::settings_digest

  artifact::FetchOptions own_files; // for FetchedArtifact files: the caller's, not the bounty's

  Impl(LocalOptions o, std::vector<engine::Engine*> e, std::unique_ptr<engine::EngineSet> set)
      : opts(std::move(o)), owned(std::move(set)), engines(owned ? owned->engines() : e),
        pool(std::max<std::size_t>(1, opts.concurrency)) {
    own_files = opts.fetch;
    own_files.allow_file_uris = true;
    own_files.allowed_file_prefixes.reset();
    for (auto* eng : engines) {
      const auto& m = eng->manifest();
      infos.push_back(engine_info(m));
      callbacks.set_for_engine(m.name, {m.on_success, m.on_error, m.callback_timeout}, m.dir);
    }
    apply_needs();
  }

  // What nobody reads is not computed. An engine's own callbacks get the bounty, mimetype and
  // sha256 included.
  void apply_needs() {
    if (opts.identify_only_if_needed) {
      opts.fetch.identify = engines_need_mimetype(engines) || !callbacks.empty();
      own_files.identify = opts.fetch.identify; // a spooled artifact is no exception
    }
    if (opts.digest_only_if_needed) {
      opts.fetch.digest = engines_need_sha256(engines) || !callbacks.empty();
      own_files.digest = opts.fetch.digest;
    }
  }

  asio::awaitable<void> start_engines() {
    if (!owned || started) {
      co_return;
    }
    started = true;
    co_await owned->start_all();
    engines = owned->engines(); // one that failed to start is now its stand-in
  }

  // The engines a job asked for, in its order; a name we do not run is paired with null.
  std::vector<std::pair<std::string, engine::Engine*>> chosen_for(const Job& job) const {
    std::vector<std::pair<std::string, engine::Engine*>> out;
    if (job.engines.empty()) {
      for (auto* e : engines) {
        out.emplace_back(e->manifest().name, e);
      }
      return out;
    }
    for (const auto& name : job.engines) {
      auto it = std::ranges::find_if(
          engines, [&](const engine::Engine* e) { return e->manifest().name == name; });
      out.emplace_back(name, it != engines.end() ? *it : nullptr);
    }
    return out;
  }

  static asio::awaitable<Result<artifact::Artifact>>
  fetch_task(std::string source, const artifact::FetchOptions* opts, bool digest) {
    if (digest && !opts->digest) { // a bounty's sha256 to check: the bytes must match it
      artifact::FetchOptions hashing = *opts;
      hashing.digest = true;
      co_return artifact::fetch(source, hashing);
    }
    co_return artifact::fetch(source, *opts);
  }

  // A file the caller fetched and hashed (a result cache looking it up): only libmagic left.
  static asio::awaitable<Result<artifact::Artifact>> identify_task(artifact::Artifact a) {
    if (auto m = artifact::mimetype_of_file(a.path)) {
      a.mimetype = std::move(*m);
    }
    co_return a;
  }

  std::chrono::milliseconds timeout_for(const engine::Engine& e) const {
    if (opts.scan_timeout.count() > 0) {
      return opts.scan_timeout;
    }
    return e.manifest().scan_timeout;
  }

  // A job between its two stages: fetched (hashed, identified) on the pool, eagerly, while
  // the worker still scans the previous one; then scanned on the I/O executor.
  struct Pending {
    explicit Pending(asio::any_io_executor ex) : fetched_event(ex, Clock::time_point::max()) {}
    Job job;
    JobResult result;
    model::Bounty bounty;
    std::vector<std::pair<std::string, engine::Engine*>> chosen; // null: not one of ours
    bool done = false; // answered before fetching (bad input, expired)
    bool fetched_ready = false;
    Result<artifact::Artifact> fetched = make_error("not fetched");
    asio::steady_timer fetched_event; // cancelled when `fetched` is set
  };

  static EngineInfo info_of(const std::pair<std::string, engine::Engine*>& c) {
    return c.second != nullptr ? engine_info(c.second->manifest()) : EngineInfo{c.first, "", ""};
  }

  void answer_all_unknown(Pending& p, const std::string& reason, std::string_view comment) {
    for (const auto& c : p.chosen) {
      p.result.analyses.push_back(
          {c.first, unknown_analysis(info_of(c), p.bounty, reason, comment)});
    }
    p.result.bounty = p.bounty;
    p.done = true;
  }

  // Stage 1: builds the bounty and starts fetching; returns at once.
  std::shared_ptr<Pending> start(Job job, asio::any_io_executor io) {
    auto p = std::make_shared<Pending>(io);
    p->result.index = job.index;
    p->result.input = job.input;
    p->bounty = job_bounty(job);
    p->chosen = chosen_for(job);
    std::string source = job_source(job);
    p->job = std::move(job);
    if (p->job.error) {
      answer_all_unknown(*p, *p->job.error, model::k_skipped_cannot_fetch);
      return p;
    }
    if (p->bounty.expiration && *p->bounty.expiration <= std::chrono::system_clock::now()) {
      answer_all_unknown(*p,
                         "bounty expired at " + model::format_iso8601(*p->bounty.expiration) +
                             " before it was scanned",
                         model::k_skipped);
      return p;
    }
    const artifact::FetchOptions* fetch_opts = &opts.fetch;
    if (p->job.fetched) {
      const FetchedArtifact& f = *p->job.fetched;
      if (!f.sha256.empty()) { // fetched and hashed by the caller: identified, if need be
        artifact::Artifact a;
        a.name = p->bounty.artifact_uri;
        a.path = f.path;
        a.size = f.size;
        a.sha256 = f.sha256;
        a.mimetype = f.mimetype;
        if (!a.mimetype.empty() || !opts.fetch.identify) {
          p->fetched = std::move(a);
          p->fetched_ready = true;
          return p;
        }
        complete_on_pool(p, identify_task(std::move(a)), io);
        return p;
      }
      // The caller's own file (a spooled data: artifact): hashed and identified here, outside
      // the policy for the files a bounty may name.
      source = f.path.string();
      fetch_opts = &own_files;
    }
    complete_on_pool(p, fetch_task(std::move(source), fetch_opts, p->bounty.sha256.has_value()),
                     io);
    return p;
  }

  // Runs `task` (fetching, identifying) on the pool; its result lands in `p` on `io`.
  void complete_on_pool(const std::shared_ptr<Pending>& p,
                        asio::awaitable<Result<artifact::Artifact>> task,
                        asio::any_io_executor io) {
    asio::co_spawn(
        pool, std::move(task),
        asio::bind_executor(io, [p](std::exception_ptr ep, Result<artifact::Artifact> r) mutable {
          if (ep) {
            try {
              std::rethrow_exception(ep);
            } catch (const std::exception& e) {
              r = make_error(std::string("internal error while fetching: ") + e.what());
            }
          }
          p->fetched = std::move(r);
          p->fetched_ready = true;
          p->fetched_event.cancel();
        }));
  }

  asio::awaitable<void> analyze_one(engine::Engine& e, const artifact::Artifact& art,
                                    const model::Bounty& bounty, model::Analysis* out) {
    *out = co_await engine::analyze(e, art, bounty, bounty_deadline(bounty, timeout_for(e)));
  }

  static model::Analysis internal_error(const engine::Engine& e, const model::Bounty& bounty,
                                        std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    return unknown_analysis(engine_info(e.manifest()), bounty, "internal error: " + what);
  }

  // Stage 2: waits for the fetch, then runs every engine.
  asio::awaitable<JobResult> finish(std::shared_ptr<Pending> p) {
    if (p->done) {
      co_return std::move(p->result);
    }
    while (!p->fetched_ready) {
      co_await p->fetched_event.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (!p->fetched) {
      answer_all_unknown(*p, p->fetched.error().message, model::k_skipped_cannot_fetch);
      co_return std::move(p->result);
    }
    artifact::Artifact& art = *p->fetched;
    model::Bounty& bounty = p->bounty;
    if (p->job.artifact_type == model::ArtifactType::url && !p->job.bounty) {
      art.name = p->job.input;
    }
    if (bounty.sha256 && *bounty.sha256 != art.sha256) {
      answer_all_unknown(*p,
                         "sha256 mismatch: the bounty says " + *bounty.sha256 +
                             ", the artifact is " + art.sha256,
                         model::k_skipped_cannot_fetch);
      co_return std::move(p->result);
    }
    complete_local_bounty(bounty, p->job, art);
    if (!art.sha256.empty()) { // empty: not computed, nobody reads it
      bounty.sha256 = art.sha256;
    }
    if (!bounty.mimetype && !art.mimetype.empty()) {
      bounty.mimetype = art.mimetype;
    }
    p->result.bounty = bounty;
    // Engines run concurrently; each answers on its own (one failing touches no other).
    auto ex = co_await asio::this_coro::executor;
    const auto& chosen = p->chosen;
    std::vector<model::Analysis> answers(chosen.size());
    std::size_t left = 0;
    asio::steady_timer all_answered(ex, Clock::time_point::max());
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      engine::Engine* e = chosen[i].second;
      if (e == nullptr) {
        answers[i] = unknown_analysis(info_of(chosen[i]), bounty,
                                      "no engine named '" + chosen[i].first + "' here");
        continue;
      }
      ++left;
      auto task = analyze_one(*e, art, bounty, &answers[i]);
      asio::co_spawn(ex, std::move(task), [&, i, e](std::exception_ptr ep) {
        if (ep) {
          answers[i] = internal_error(*e, bounty, ep);
        }
        if (--left == 0) {
          all_answered.cancel();
        }
      });
    }
    while (left > 0) {
      co_await all_answered.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      p->result.analyses.push_back({chosen[i].first, std::move(answers[i])});
    }
    co_return std::move(p->result);
  }
};

LocalBackend::LocalBackend(LocalOptions opts, std::vector<engine::Engine*> engines)
    : m_impl(std::make_unique<Impl>(std::move(opts), std::move(engines), nullptr)) {}

LocalBackend::LocalBackend(LocalOptions opts, std::unique_ptr<engine::EngineSet> engines)
    : m_impl(std::make_unique<Impl>(std::move(opts), std::vector<engine::Engine*>{},
                                    std::move(engines))) {}

const std::vector<EngineInfo>& LocalBackend::engines() const {
  return m_impl->infos;
}

asio::awaitable<void> LocalBackend::start() {
  co_await m_impl->start_engines();
}

asio::awaitable<void> LocalBackend::stop() {
  if (m_impl->owned) {
    co_await m_impl->owned->stop_all();
  }
}

std::vector<EngineState> LocalBackend::states() const {
  std::vector<EngineState> out;
  for (auto* e : m_impl->engines) {
    EngineState st{e->manifest().name, "ok", 0};
    if (auto s = e->service_status()) {
      st.state = std::string(supervisor::to_string(s->state));
      st.restarts = s->restarts;
    }
    if (auto u = m_impl->updates.find(st.engine); u != m_impl->updates.end()) {
      st.updates_ok = u->second.first;
      st.updates_failed = u->second.second;
    }
    out.push_back(std::move(st));
  }
  return out;
}

asio::awaitable<std::vector<engine::UpdateOutcome>> LocalBackend::reload(bool run_updaters) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<engine::UpdateOutcome> out;
  for (auto* e : m_impl->engines) { // one at a time: a pool of instances is replaced in turn
    auto o = co_await engine::update_engine(ex, *e, run_updaters && engine::has_updater(*e));
    auto& [ok, failed] = m_impl->updates[o.engine];
    ++(o.ok ? ok : failed);
    out.push_back(std::move(o));
  }
  co_return out;
}

std::optional<cache::Identity> LocalBackend::identity(const std::string& name) const {
  auto it = std::ranges::find_if(
      m_impl->engines, [&](const engine::Engine* e) { return e->manifest().name == name; });
  if (it == m_impl->engines.end()) {
    return std::nullopt;
  }
  const engine::Engine& e = **it;
  const auto v = e.versions();
  if (!v.definitions || v.definitions->empty()) {
    return std::nullopt;
  }
  auto& settings = m_impl->settings[name];
  if (settings.empty()) {
    // Where things are (the standard folders, the engine's own) differs between hosts and
    // runs and changes no answer: the definitions and engine versions say what is in them.
    // What is left are the engine's settings.
    auto vars = e.env().vars;
    for (std::string_view key : env::k_standard_keys) {
      vars.erase(e.env().prefix + "_" + std::string(key));
    }
    vars.erase("ENGINE_DIR");
    vars.erase("ENGINE_NAME");
    settings = cache::settings_digest(e.manifest().raw.dump(), vars);
  }
  return cache::Identity{v.engine.value_or(""), *v.definitions, settings};
}

asio::awaitable<JobResult> LocalBackend::run_one(Job job) {
  auto ex = co_await asio::this_coro::executor;
  auto pending = m_impl->start(std::move(job), ex);
  JobResult r = co_await m_impl->finish(pending);
  m_impl->callbacks.fire(r);
  co_return r;
}

void LocalBackend::cancel() {
  m_impl->cancelled = true;
}

LocalBackend::~LocalBackend() {
  m_impl->pool.join();
}

asio::awaitable<void> LocalBackend::run(std::vector<Job> jobs, ResultSink sink) {
  co_await m_impl->start_engines();
  auto ex = co_await asio::this_coro::executor;
  Impl& s = *m_impl;
  // Each worker scans one job while the pool fetches its next one: neither clamd nor our
  // hashing waits for the other.
  auto answer = [&](JobResult r) {
    s.callbacks.fire(r);
    sink(std::move(r));
  };
  co_await run_look_ahead(
      jobs, s.opts.concurrency, s.cancelled, answer,
      [&](Job job) { return s.start(std::move(job), ex); },
      [&](const std::shared_ptr<Impl::Pending>& p) { return s.finish(p); },
      [&](const std::shared_ptr<Impl::Pending>& p, const std::string& what) {
        // A bug must not lose the bounty: answer it unknown and go on.
        s.log->error("{}: {}", p->result.input, what);
        std::vector<EngineInfo> asked;
        for (const auto& c : p->chosen) {
          asked.push_back(Impl::info_of(c));
        }
        return unknown_result(p->job, p->bounty, asked, "internal error: " + what);
      });
}

} // namespace pss::backend

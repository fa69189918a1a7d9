#include "backend/local.hpp"

#include "artifact/uri.hpp"
#include "model/bounty.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <filesystem>

namespace pss::backend {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::chrono::steady_clock::time_point bounty_deadline(const model::Bounty& b,
                                                      std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  if (b.expiration) {
    auto left = *b.expiration - std::chrono::system_clock::now();
    deadline = std::min(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(left));
  }
  return deadline;
}

namespace {

// file:// URI of a local path, percent-encoding what is not unreserved or '/'.
std::string file_uri(const std::filesystem::path& p) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out = "file://";
  for (unsigned char c : p.native()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    }
  }
  return out;
}

} // namespace

struct LocalBackend::Impl {
  LocalOptions opts;
  std::vector<engine::Engine*> engines;
  asio::thread_pool pool;
  std::shared_ptr<spdlog::logger> log = log::get("local");

  Impl(LocalOptions o, std::vector<engine::Engine*> e)
      : opts(std::move(o)), engines(std::move(e)), pool(std::max<std::size_t>(1, opts.concurrency)) {}

  static asio::awaitable<Result<artifact::Artifact>> fetch_task(std::string source,
                                                              const artifact::FetchOptions* opts) {
    co_return artifact::fetch(source, *opts);
  }

  // Fetch, hash and identify on the pool: blocking file and network I/O, CPU-bound hashing.
  // (The task is a named local: GCC 12 destroys lambda temporaries in a co_await expression
  // twice.)
  asio::awaitable<Result<artifact::Artifact>> fetch(std::string source) {
    auto task = fetch_task(std::move(source), &opts.fetch);
    auto result = co_await asio::co_spawn(pool, std::move(task), asio::use_awaitable);
    co_return result;
  }

  std::chrono::milliseconds timeout_for(const engine::Engine& e) const {
    if (opts.scan_timeout.count() > 0) {
      return opts.scan_timeout;
    }
    return e.manifest().scan_timeout;
  }

  asio::awaitable<JobResult> process(Job job) {
    JobResult result;
    result.index = job.index;
    result.input = job.input;
    model::Bounty bounty;
    std::string source = job.input;
    if (job.bounty) {
      bounty = *job.bounty;
      source = bounty.artifact_uri;
    } else {
      bounty.artifact_type = job.artifact_type;
      bounty.artifact_uri = job.input;
    }
    auto all_unknown = [&](const std::string& reason, std::optional<std::string> comment) {
      for (auto* e : engines) {
        auto a = model::Analysis::unknown_because(reason, comment);
        a.product = e->manifest().product;
        a.vendor = e->manifest().vendor;
        model::finalize(a, bounty);
        result.analyses.push_back({e->manifest().name, std::move(a)});
      }
    };
    if (job.error) {
      bounty.id = model::local_bounty_id(sha256_hex(job.input));
      result.bounty = bounty;
      all_unknown(*job.error, std::string(model::k_skipped_cannot_fetch));
      co_return result;
    }
    if (bounty.expiration && *bounty.expiration <= std::chrono::system_clock::now()) {
      result.bounty = bounty;
      all_unknown("bounty expired at " + model::format_iso8601(*bounty.expiration) +
                      " before it was scanned",
                  std::string(model::k_skipped));
      co_return result;
    }

    Result<artifact::Artifact> fetched = make_error("not fetched");
    if (bounty.artifact_type == model::ArtifactType::url && !job.bounty) {
      // A URL artifact is the URL itself: scan its text.
      fetched = co_await fetch("data:," + job.input);
      if (fetched) {
        fetched->name = job.input;
      }
    } else {
      fetched = co_await fetch(source);
    }
    if (!fetched) {
      if (!job.bounty) {
        bounty.id = model::local_bounty_id(sha256_hex(job.input));
      }
      result.bounty = bounty;
      all_unknown(fetched.error().message, std::string(model::k_skipped_cannot_fetch));
      co_return result;
    }
    artifact::Artifact& art = *fetched;
    if (bounty.sha256 && *bounty.sha256 != art.sha256) {
      result.bounty = bounty;
      all_unknown("sha256 mismatch: the bounty says " + *bounty.sha256 + ", the artifact is " +
                      art.sha256,
                  std::string(model::k_skipped_cannot_fetch));
      co_return result;
    }
    if (!job.bounty) {
      bounty.id = model::local_bounty_id(art.sha256);
      if (artifact::classify_input(job.input) == artifact::InputKind::path) {
        bounty.artifact_uri = file_uri(art.path);
      }
    }
    bounty.sha256 = art.sha256;
    if (!bounty.mimetype) {
      bounty.mimetype = art.mimetype;
    }
    result.bounty = bounty;
    for (auto* e : engines) {
      auto deadline = bounty_deadline(bounty, timeout_for(*e));
      model::Analysis a = co_await engine::analyze(*e, art, bounty, deadline);
      result.analyses.push_back({e->manifest().name, std::move(a)});
    }
    co_return result;
  }
};

LocalBackend::LocalBackend(LocalOptions opts, std::vector<engine::Engine*> engines)
    : m_impl(std::make_unique<Impl>(std::move(opts), std::move(engines))) {}

LocalBackend::~LocalBackend() { m_impl->pool.join(); }

asio::awaitable<void> LocalBackend::run(std::vector<Job> jobs, ResultSink sink) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0;
  std::size_t running = std::max<std::size_t>(1, std::min(m_impl->opts.concurrency, jobs.size()));
  asio::steady_timer all_done(ex, Clock::time_point::max());

  auto worker = [&]() -> asio::awaitable<void> {
    while (next < jobs.size()) {
      Job job = std::move(jobs[next++]);
      std::size_t index = job.index;
      std::string input = job.input;
      JobResult r;
      try {
        r = co_await m_impl->process(std::move(job));
      } catch (const std::exception& e) {
        // A bug must not lose the bounty: answer it unknown and go on.
        m_impl->log->error("{}: {}", input, e.what());
        r.index = index;
        r.input = input;
        for (auto* eng : m_impl->engines) {
          r.analyses.push_back({eng->manifest().name,
                                model::Analysis::unknown_because(std::string("internal error: ") + e.what())});
        }
      }
      sink(std::move(r));
    }
    if (--running == 0) {
      all_done.cancel();
    }
  };
  if (jobs.empty()) {
    co_return;
  }
  for (std::size_t i = 0, n = running; i < n; ++i) {
    asio::co_spawn(ex, worker(), asio::detached);
  }
  // Workers may finish before we get here (a job that never suspends); cancel() only wakes
  // a wait already pending, so check the count first. Single-threaded: no race.
  while (running > 0) {
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

} // namespace pss::backend

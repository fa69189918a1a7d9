#include "backend/celery.hpp"

#include "artifact/uri.hpp"
#include "backend/answers.hpp"
#include "backend/celery_task.hpp"
#include "engine/engine_set.hpp"
#include "util/base64.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <map>

namespace pss::backend {

namespace asio = boost::asio;

namespace {

constexpr std::size_t k_client_threads = 4; // bounties waited for at once (webhook)

// The bounty a worker gets for one input: local files by file:// URI (the worker must see
// the same path) with their hash, so that the id is the one every backend gives them.
Result<model::Bounty> bounty_for(const Job& job, const artifact::FetchOptions& fetch) {
  if (job.bounty) {
    return *job.bounty;
  }
  model::Bounty b = job_bounty(job);
  auto kind = artifact::classify_input(job.input);
  if (job.artifact_type == model::ArtifactType::url || kind == artifact::InputKind::http_uri) {
    b.artifact_uri = job_source(job); // the worker fetches it, or scans the URL's text
    return b;
  }
  auto art = artifact::fetch(job.input, fetch);
  if (!art) {
    return art.error();
  }
  complete_local_bounty(b, job, *art);
  b.sha256 = art->sha256;
  b.mimetype = art->mimetype;
  if (kind == artifact::InputKind::path || kind == artifact::InputKind::file_uri) {
    b.artifact_uri = artifact::file_uri(std::filesystem::absolute(art->path));
  } else { // stdin, data: — the bytes travel with the bounty
    auto bytes = artifact::fetch_bytes(job.input == "-" ? art->path.native() : job.input, fetch);
    if (!bytes) {
      return bytes.error();
    }
    b.artifact_uri = "data:application/octet-stream;base64," + base64_encode(*bytes);
  }
  return b;
}

} // namespace

model::Analysis analysis_from_task_result(const EngineInfo& engine, const model::Bounty& bounty,
                                          const Result<celery::ResultMeta>& meta) {
  if (!meta) {
    return unknown_analysis(engine, bounty, meta.error().message);
  }
  if (meta->status != celery::k_success) {
    return unknown_analysis(engine, bounty, "worker: " + meta->error_text());
  }
  nlohmann::json value = meta->result;
  if (value.is_object() && value.contains(engine.name) && value[engine.name].is_object()) {
    value = value[engine.name]; // a worker running several engines
  }
  auto parsed = model::analysis_from_json(value);
  if (!parsed) {
    return unknown_analysis(engine, bounty,
                            "worker: unreadable analysis: " + parsed.error().message);
  }
  return *parsed;
}

CeleryUrls celery_urls(const std::string& broker_option, const std::string& backend_option) {
  const auto from_env = [](const char* name) {
    const char* e = std::getenv(name);
    return std::string(e != nullptr ? e : "");
  };
  std::string broker = broker_option;
  std::string where = "--broker";
  if (broker.empty() && !(broker = from_env("PSS_BROKER_URL")).empty()) {
    where = "$PSS_BROKER_URL";
  }
  if (broker.empty()) {
    broker = "redis://127.0.0.1:6379/0";
  }
  auto b = celery::parse_broker_url(broker);
  if (!b) {
    throw Fatal(where + ": " + b.error().message);
  }
  std::string results = backend_option;
  where = "--result-backend";
  if (results.empty() && !(results = from_env("PSS_RESULT_BACKEND")).empty()) {
    where = "$PSS_RESULT_BACKEND";
  }
  if (results.empty()) {
    if (!std::holds_alternative<celery::RedisUrl>(*b)) {
      throw Fatal("an amqp:// broker needs a Redis result backend: give --result-backend "
                  "redis://host:port/db (or set PSS_RESULT_BACKEND)");
    }
    return {*b, std::get<celery::RedisUrl>(*b)};
  }
  auto r = celery::parse_redis_url(results);
  if (!r) {
    throw Fatal(where + ": " + r.error().message + " (the result backend is Redis)");
  }
  return {*b, *r};
}

struct CeleryBackend::Impl {
  CeleryOptions opts;
  CeleryUrls urls;
  std::vector<EngineInfo> infos;
  asio::thread_pool pool{k_client_threads};
  std::atomic<bool> cancelled{false};
  std::shared_ptr<spdlog::logger> log = log::get("celery");

  explicit Impl(CeleryOptions o)
      : opts(std::move(o)), urls(celery_urls(opts.broker_url, opts.result_backend_url)) {
    auto search = engine::engine_search_path(opts.engines_dir);
    for (const auto& name : opts.engines) { // the workers may run engines we do not have
      auto loaded = engine::load_engine(name, search);
      infos.push_back(loaded ? engine_info(loaded->manifest) : EngineInfo{name, "", ""});
    }
  }

  celery::ClientOptions client(const std::string& engine) const {
    celery::ClientOptions co;
    co.broker = urls.broker;
    co.result_backend = urls.result_backend;
    co.queue = opts.queue.empty() ? engine : opts.queue;
    co.task_name = std::string(k_analyze_task);
    co.wait = opts.wait;
    co.wait_timeout = opts.wait_timeout;
    co.cancel = &cancelled;
    return co;
  }

  // Blocking: on a pool thread. `deliver` gets each job's result once all its engines answered.
  void run_blocking(std::vector<Job>& jobs, const std::function<void(JobResult)>& deliver) {
    std::vector<JobResult> out(jobs.size());
    std::vector<std::vector<EngineInfo>> asked(jobs.size());
    std::vector<std::size_t> answers_left(jobs.size(), 0);
    std::map<std::string, std::vector<std::size_t>> by_engine; // engine → jobs asking for it
    std::vector<std::string> engine_order;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      out[i].index = jobs[i].index;
      out[i].input = jobs[i].input;
      asked[i] = engines_for(jobs[i], infos);
      if (!jobs[i].error) {
        auto b = bounty_for(jobs[i], opts.fetch);
        if (b) {
          out[i].bounty = std::move(*b);
        } else {
          jobs[i].error = b.error().message;
        }
      }
      if (jobs[i].error) { // answered now, for every engine
        out[i] = unknown_result(jobs[i], job_bounty(jobs[i]), asked[i], *jobs[i].error,
                                model::k_skipped_cannot_fetch);
        deliver(std::move(out[i]));
        continue;
      }
      out[i].analyses.resize(asked[i].size());
      answers_left[i] = asked[i].size();
      for (std::size_t k = 0; k < asked[i].size(); ++k) {
        const auto& name = asked[i][k].name;
        out[i].analyses[k].engine = name;
        if (!by_engine.contains(name)) {
          engine_order.push_back(name);
        }
        by_engine[name].push_back(i);
      }
    }
    for (const auto& engine : engine_order) {
      const auto& job_ids = by_engine[engine];
      std::vector<celery::TaskCall> calls;
      for (std::size_t i : job_ids) {
        celery::TaskCall call;
        call.args = celery::Json::array({celery::Json(model::to_json(out[i].bounty))});
        calls.push_back(std::move(call));
      }
      auto co = client(engine);
      auto sent = [&](std::size_t c, const std::string& id) {
        if (opts.on_sent) {
          opts.on_sent(jobs[job_ids[c]].input, co.queue, id);
        }
        log->debug("{}: task {} on queue '{}'", jobs[job_ids[c]].input, id, co.queue);
      };
      auto got = [&](std::size_t c, Result<celery::ResultMeta> meta) {
        std::size_t i = job_ids[c];
        for (std::size_t k = 0; k < asked[i].size(); ++k) {
          if (asked[i][k].name == engine) {
            out[i].analyses[k].analysis =
                analysis_from_task_result(asked[i][k], out[i].bounty, meta);
          }
        }
        if (--answers_left[i] == 0) {
          deliver(std::move(out[i]));
        }
      };
      auto r = celery::call_tasks(co, calls, sent, got);
      if (!r) {
        throw Fatal(r.error().message);
      }
    }
  }

  JobResult one_blocking(const Job& job) {
    auto asked = engines_for(job, infos);
    model::Bounty bounty = job_bounty(job);
    if (job.error) {
      return unknown_result(job, bounty, asked, *job.error, model::k_skipped_cannot_fetch);
    }
    JobResult r = unknown_result(job, bounty, asked, "no answer from a worker");
    celery::TaskCall call;
    call.args = celery::Json::array({celery::Json(model::to_json(bounty))});
    call.expires = bounty.expiration;
    for (std::size_t k = 0; k < asked.size(); ++k) {
      auto& ea = r.analyses[k];
      auto co = client(ea.engine);
      co.wait = true;
      if (bounty.expiration) { // no answer is of use after it
        auto left = *bounty.expiration - std::chrono::system_clock::now();
        co.wait_timeout = std::max(std::chrono::milliseconds(1),
                                   std::chrono::duration_cast<std::chrono::milliseconds>(left));
      }
      auto got = [&](std::size_t, Result<celery::ResultMeta> meta) {
        ea.analysis = analysis_from_task_result(asked[k], bounty, meta);
      };
      auto sent = celery::call_tasks(
          co, {call}, [](std::size_t, const std::string&) {}, got);
      if (!sent) {
        ea.analysis = unknown_analysis(asked[k], bounty, sent.error().message);
      }
    }
    return r;
  }
};

CeleryBackend::CeleryBackend(CeleryOptions opts)
    : m_impl(std::make_unique<Impl>(std::move(opts))) {}

CeleryBackend::~CeleryBackend() {
  m_impl->cancelled = true;
  m_impl->pool.join();
}

const std::vector<EngineInfo>& CeleryBackend::engines() const {
  return m_impl->infos;
}

asio::awaitable<void> CeleryBackend::start() {
  co_return;
}

asio::awaitable<void> CeleryBackend::run(std::vector<Job> jobs, ResultSink sink) {
  auto caller = co_await asio::this_coro::executor;
  Impl* impl = m_impl.get();
  // Results are handed over on the caller's executor, in the order they came.
  auto deliver = [caller, impl, &sink](JobResult r) {
    asio::post(caller, [impl, &sink, r = std::move(r)]() mutable {
      if (!impl->cancelled) {
        sink(std::move(r));
      }
    });
  };
  auto blocking = [impl, &jobs, deliver]() -> asio::awaitable<void> {
    impl->run_blocking(jobs, deliver);
    co_return;
  };
  auto task = blocking();
  co_await asio::co_spawn(impl->pool, std::move(task), asio::use_awaitable);
}

asio::awaitable<JobResult> CeleryBackend::run_one(Job job) {
  Impl* impl = m_impl.get();
  auto blocking = [impl](Job j) -> asio::awaitable<JobResult> { co_return impl->one_blocking(j); };
  auto task = blocking(std::move(job));
  co_return co_await asio::co_spawn(impl->pool, std::move(task), asio::use_awaitable);
}

void CeleryBackend::cancel() {
  m_impl->cancelled = true;
}

asio::awaitable<void> CeleryBackend::stop() {
  co_return;
}

} // namespace pss::backend

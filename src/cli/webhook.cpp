#include "cli/webhook.hpp"

#include "backend/local.hpp"
#include "backend/process.hpp"
#include "celery/analyze_task.hpp"
#include "celery/client.hpp"
#include "cli/backend_worker.hpp"
#include "cli/engine_set.hpp"
#include "cli/size.hpp"
#include "cli/worker.hpp"
#include "http/webhook.hpp"
#include "util/log.hpp"
#include "util/memory.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <map>
#include <thread>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

backend::JobResult unknown_result(const backend::Job& job, const std::string& engine,
                                  const std::string& why) {
  backend::JobResult r;
  r.input = job.input;
  if (job.bounty) {
    r.bounty = *job.bounty;
  }
  r.analyses.push_back({engine, model::Analysis::unknown_because(why)});
  return r;
}

// One bounty through Celery: blocking Redis I/O, so on a pool thread.
asio::awaitable<backend::JobResult> celery_one(celery::ClientOptions co, backend::Job job) {
  backend::JobResult r = unknown_result(job, co.queue, "no answer");
  if (job.bounty && job.bounty->expiration) {
    auto left = *job.bounty->expiration - std::chrono::system_clock::now();
    co.wait_timeout = std::max(std::chrono::milliseconds(1),
                               std::chrono::duration_cast<std::chrono::milliseconds>(left));
  }
  celery::TaskCall call;
  call.args = celery::Json::array({celery::Json(model::to_json(*job.bounty))});
  call.expires = job.bounty->expiration;
  model::Analysis a = model::Analysis::unknown_because("no answer from a worker");
  auto got = [&](std::size_t, Result<celery::ResultMeta> meta) {
    if (!meta) {
      a = model::Analysis::unknown_because(meta.error().message);
    } else if (meta->status != celery::k_success) {
      a = model::Analysis::unknown_because("worker: " + meta->error_text());
    } else {
      auto parsed = model::analysis_from_json(nlohmann::json(meta->result));
      a = parsed ? *parsed
                 : model::Analysis::unknown_because("worker: unreadable analysis: " +
                                                    parsed.error().message);
    }
  };
  auto sent = celery::call_tasks(
      co, {call}, [](std::size_t, const std::string&) {}, got);
  if (!sent) {
    a = model::Analysis::unknown_because(sent.error().message);
  }
  r.analyses.front().analysis = std::move(a);
  co_return r;
}

} // namespace

void setup_webhook(CLI::App& app, WebhookCliOptions& opts) {
  app.add_option("-p,--port", opts.port, "Port to listen on")->capture_default_str();
  app.add_option("--bind", opts.bind, "Address to listen on")->capture_default_str();
  app.add_option("--backend", opts.backend, "Where bounties are scanned")
      ->check(CLI::IsMember({"local", "process", "celery"}))
      ->capture_default_str();
  app.add_option("--secret", opts.secret,
                 "The webhook secret (default: $PSS_WEBHOOK_SECRET): requests must carry "
                 "X-POLYSWARM-SIGNATURE, and our answers are signed with it");
  app.add_flag("--insecure", opts.insecure, "Accept unsigned requests when no secret is set");
  app.add_option("--concurrency", opts.concurrency,
                 "Bounties scanned at once (default: the number of cores)");
  app.add_option("--queue-limit", opts.queue_limit,
                 "Bounties accepted and waiting; beyond, 503 with Retry-After")
      ->capture_default_str();
  app.add_option("--body-limit", opts.body_limit, "Largest request body (413 beyond)")
      ->capture_default_str();
  app.add_option("--allow-file-prefix", opts.allow_file_prefixes,
                 "A folder whose files a bounty may name by file:// (default: none)");
  app.add_flag("--allow-private-networks", opts.allow_private_networks,
               "Let bounties name loopback and private addresses (artifacts to fetch, "
               "response_urls to answer)");
  app.add_option("--timeout", opts.timeout, "Seconds allowed per scan (default: the engine's)");
  app.add_option("--max-size", opts.max_size, "Largest artifact fetched")->capture_default_str();
  app.add_option("--fetch-concurrency", opts.fetch_concurrency,
                 "Artifacts downloaded at once (with those downloaded and waiting for a scan)")
      ->capture_default_str();
  app.add_option("--fetch-timeout", opts.fetch_timeout,
                 "Seconds allowed per download (also bounded by the bounty's expiration)")
      ->capture_default_str();
  app.add_option("--delivery-concurrency", opts.delivery_concurrency,
                 "Answers POSTed to response_urls at once")
      ->capture_default_str();
  app.add_option("--drain-timeout", opts.drain_timeout,
                 "On SIGTERM: seconds for the bounties accepted to be scanned and answered; "
                 "then what is left is given up and logged (a service manager's stop timeout "
                 "must be longer)")
      ->capture_default_str();
  app.add_option("--broker", opts.broker, "--backend celery: the broker URL");
  app.add_option("--result-backend", opts.result_backend, "--backend celery: the result backend");
}

int run_webhook(const GlobalOptions& global, const WebhookCliOptions& opts) {
  auto log = log::get("webhook");
  tune_allocator(); // request bodies come and go: their memory goes back after a burst
  http::WebhookOptions wo;
  wo.bind = opts.bind;
  if (opts.port < 0 || opts.port > 65535) {
    throw Fatal("--port must be 0..65535");
  }
  wo.port = static_cast<std::uint16_t>(opts.port);
  wo.secret = opts.secret;
  if (wo.secret.empty()) {
    if (const char* e = std::getenv("PSS_WEBHOOK_SECRET"); e != nullptr) {
      wo.secret = e;
    }
  }
  if (wo.secret.empty() && !opts.insecure) {
    throw Fatal("no webhook secret: give --secret or PSS_WEBHOOK_SECRET (or --insecure to "
                "accept unsigned requests)");
  }
  if (wo.secret.empty()) {
    log->warn("--insecure: accepting unsigned requests; anyone who can reach port {} can "
              "submit bounties",
              opts.port);
  }
  wo.engines = global.engines;
  wo.workers =
      opts.concurrency != 0 ? opts.concurrency : std::max(1U, std::thread::hardware_concurrency());
  wo.queue_limit = opts.queue_limit;
  auto body_limit = parse_size(opts.body_limit);
  auto max_size = parse_size(opts.max_size);
  if (!body_limit || !max_size) {
    throw Fatal("--body-limit/--max-size: " +
                (!body_limit ? body_limit.error() : max_size.error()).message);
  }
  wo.body_limit = *body_limit;
  for (auto [name, v] : {std::pair{"--fetch-concurrency", opts.fetch_concurrency},
                         {"--delivery-concurrency", opts.delivery_concurrency}}) {
    if (v == 0) {
      throw Fatal(std::string(name) + " must be at least 1");
    }
  }
  if (!(opts.fetch_timeout >= 1) || !(opts.drain_timeout >= 0)) {
    throw Fatal("--fetch-timeout must be at least 1 s and --drain-timeout not negative");
  }
  wo.fetch_concurrency = opts.fetch_concurrency;
  wo.delivery_concurrency = opts.delivery_concurrency;
  wo.drain_timeout = std::chrono::seconds(static_cast<long long>(opts.drain_timeout));
  wo.allow_private_networks = opts.allow_private_networks;

  auto tmp = TempDir::create(temp_base_dir(), "pssupervise-webhook-");
  if (!tmp) {
    throw Fatal(tmp.error().message + " (set TMPDIR to a writable directory)");
  }
  backend::LocalOptions lo;
  lo.concurrency = wo.workers;
  lo.fetch.temp_dir = tmp->path();
  lo.fetch.max_size = *max_size;
  // A bounty comes from the network: it names no local file and no internal address
  // unless allowed.
  lo.fetch.allow_private_networks = opts.allow_private_networks;
  lo.fetch.allowed_file_prefixes.emplace();
  for (const auto& p : opts.allow_file_prefixes) {
    lo.fetch.allowed_file_prefixes->push_back(p);
  }
  lo.scan_timeout = std::chrono::seconds(static_cast<long long>(opts.timeout));
  if (opts.backend != "celery") { // the webhook downloads; a Celery worker fetches for itself
    wo.fetch = lo.fetch;
    wo.fetch->total_timeout = std::chrono::seconds(static_cast<long long>(opts.fetch_timeout));
  }

  asio::io_context io;
  asio::thread_pool celery_pool(4);
  bool local = opts.backend == "local";
  bool process = opts.backend == "process";
  // --backend process: workers started once, each bounty submitted to them.
  std::unique_ptr<backend::ProcessBackend> workers;
  struct Waiter {
    std::shared_ptr<asio::steady_timer> timer;
    std::optional<backend::JobResult> result;
  };
  std::map<std::size_t, std::shared_ptr<Waiter>> waiting;
  std::size_t next_index = 0;
  if (process) {
    BackendWorkerOptions bw;
    bw.timeout = opts.timeout;
    bw.max_size = opts.max_size;
    bw.deny_private_networks = !opts.allow_private_networks;
    bw.restrict_files = true;
    bw.allowed_file_prefixes = opts.allow_file_prefixes;
    workers = std::make_unique<backend::ProcessBackend>(
        process_backend_options(global, wo.workers, bw, lo.fetch));
  }
  std::optional<EngineSet> engines;
  if (local) {
    engines.emplace(global, io.get_executor());
  }
  std::vector<std::unique_ptr<backend::LocalBackend>> backends;
  celery::ClientOptions co;
  if (!local) {
    auto urls = celery_urls(opts.broker, opts.result_backend);
    co.broker = urls.broker;
    co.result_backend = urls.result_backend;
    co.task_name = std::string(celery::k_analyze_task);
  }
  http::Dispatch dispatch = [&](std::size_t engine,
                                backend::Job job) -> asio::awaitable<backend::JobResult> {
    if (local) {
      co_return co_await backends[engine]->run_one(std::move(job));
    }
    if (process) {
      std::size_t index = next_index++;
      job.index = index;
      auto w = std::make_shared<Waiter>();
      w->timer = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
      waiting[index] = w;
      workers->submit(std::move(job));
      while (!w->result) {
        co_await w->timer->async_wait(asio::as_tuple(asio::use_awaitable));
      }
      waiting.erase(index);
      backend::JobResult r = std::move(*w->result);
      // The workers run every engine; this route answers for one.
      std::erase_if(r.analyses, [&](const backend::EngineAnalysis& ea) {
        return ea.engine != global.engines[engine];
      });
      co_return r;
    }
    auto c = co;
    c.queue = global.engines[engine];
    auto task = celery_one(c, std::move(job));
    co_return co_await asio::co_spawn(celery_pool, std::move(task), asio::use_awaitable);
  };
  http::EngineGauges gauges = [&]() {
    std::vector<http::EngineGauge> out;
    if (engines) {
      for (auto* e : engines->engines()) {
        http::EngineGauge g{e->manifest().name, "ok", 0};
        if (auto st = e->service_status()) {
          g.state = std::string(supervisor::to_string(st->state));
          g.restarts = st->restarts;
        }
        out.push_back(g);
      }
    }
    return out;
  };
  http::Webhook hook(io.get_executor(), wo, dispatch, gauges);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool stop_requested = false;
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (!ec) {
      log->warn("signal {}: no new requests; answering the bounties accepted", sig);
      stop_requested = true;
      hook.stop();
    }
  });
  std::exception_ptr failure;
  auto main_task = [&]() -> asio::awaitable<void> {
    std::exception_ptr ep;
    try {
      if (engines) {
        co_await engines->start_all();
        for (auto* e : engines->engines()) {
          backends.push_back(
              std::make_unique<backend::LocalBackend>(lo, std::vector<engine::Engine*>{e}));
        }
      }
      if (workers) {
        auto serve = workers->serve([&](backend::JobResult r) {
          if (auto it = waiting.find(r.index); it != waiting.end()) {
            it->second->result = std::move(r);
            it->second->timer->cancel();
          }
        });
        asio::co_spawn(io, std::move(serve), [&](std::exception_ptr ep) {
          if (ep) { // the workers could not start: nothing can be answered
            failure = ep;
            hook.stop();
          }
        });
      }
      auto port = hook.listen();
      if (!port) {
        throw Fatal(port.error().message);
      }
      log->info("listening on {}:{} ({} backend, {} at once, queue up to {})", wo.bind, *port,
                opts.backend, wo.workers, wo.queue_limit);
      // Readiness for scripts: one line on stderr whatever the log level.
      std::fprintf(stderr, "pssupervise webhook: listening on %s:%u\n", wo.bind.c_str(), *port);
      std::fflush(stderr);
      if (stop_requested) {
        hook.stop();
      }
      auto run = hook.run();
      co_await std::move(run);
      backends.clear();
      if (workers) {
        workers->stop_service();
      }
    } catch (...) {
      ep = std::current_exception();
    }
    if (engines) {
      co_await engines->stop_all();
    }
    if (ep) {
      std::rethrow_exception(ep);
    }
  };
  asio::co_spawn(io, main_task(), [&](std::exception_ptr ep) {
    if (ep) {
      failure = ep;
    }
    signals.cancel();
  });
  io.run();
  celery_pool.join();
  if (failure) {
    std::rethrow_exception(failure);
  }
  return 0;
}

} // namespace pss::cli

#include "cli/worker.hpp"

#include "backend/local.hpp"
#include "celery/analyze_task.hpp"
#include "celery/worker.hpp"
#include "cli/engine_set.hpp"
#include "cli/size.hpp"
#include "util/log.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <filesystem>
#include <thread>
#include <unistd.h>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

constexpr auto k_drain_timeout = std::chrono::minutes(10); // SIGTERM: tasks in flight finish

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

} // namespace

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

void setup_worker(CLI::App& app, WorkerCliOptions& opts) {
  app.add_option(
      "--broker", opts.broker,
      "Broker URL, redis:// or amqp:// (default: $PSS_BROKER_URL, else redis://127.0.0.1:6379/0)");
  app.add_option(
      "--result-backend", opts.result_backend,
      "Result backend URL, Redis (default: $PSS_RESULT_BACKEND, else the broker if it is Redis)");
  app.add_option("--queue", opts.queue, "Queue to consume (default: the engine's name)");
  app.add_option("--concurrency", opts.concurrency,
                 "Tasks run at once, one message prefetched per slot (default: the number of "
                 "cores)");
  app.add_option("--visibility-timeout", opts.visibility_timeout,
                 "Redis broker: seconds after which the tasks of a worker that died are given "
                 "to a worker again; a live worker extends its own every quarter of it, however "
                 "long they run (RabbitMQ requeues at once, by itself)")
      ->capture_default_str();
  app.add_option("--timeout", opts.timeout, "Seconds allowed per scan (default: the engine's)");
  app.add_option("--max-size", opts.max_size, "Largest artifact fetched (e.g. 512M, 2G)")
      ->capture_default_str();
  app.add_option("--allow-file-prefix", opts.allow_file_prefixes,
                 "A folder whose files a task may name, by path or file:// (repeatable; "
                 "default: none). `analyze --backend celery` sends local files as file:// URIs: "
                 "give the folder it shares with this worker");
  app.add_flag("--allow-private-networks", opts.allow_private_networks,
               "Let tasks fetch http(s) artifacts from loopback and private addresses");
}

int run_worker(const GlobalOptions& global, const WorkerCliOptions& opts) {
  auto log = log::get("worker");
  auto urls = celery_urls(opts.broker, opts.result_backend);
  auto max_size = parse_size(opts.max_size);
  if (!max_size) {
    throw Fatal("--max-size: " + max_size.error().message);
  }
  if (opts.visibility_timeout <= 0) {
    throw Fatal("--visibility-timeout must be positive");
  }
  celery::WorkerOptions wo;
  wo.broker = urls.broker;
  wo.result_backend = urls.result_backend;
  wo.queue = opts.queue.empty() ? global.engines.front() : opts.queue;
  wo.concurrency =
      opts.concurrency != 0 ? opts.concurrency : std::max(1U, std::thread::hardware_concurrency());
  wo.visibility_timeout =
      std::chrono::milliseconds(static_cast<long long>(opts.visibility_timeout * 1000));
  wo.nodename = "pssupervise@" + hostname();

  auto tmp = TempDir::create(temp_base_dir(), "pssupervise-worker-");
  if (!tmp) {
    throw Fatal(tmp.error().message + " (set TMPDIR to a writable directory)");
  }
  backend::LocalOptions lo;
  lo.concurrency = wo.concurrency;
  lo.fetch.temp_dir = tmp->path();
  lo.fetch.max_size = *max_size;
  // A task comes from the network, as a webhook's bounty does: it names no local file and no
  // internal address unless allowed.
  lo.fetch.allow_private_networks = opts.allow_private_networks;
  lo.fetch.allowed_file_prefixes.emplace();
  for (const auto& p : opts.allow_file_prefixes) {
    lo.fetch.allowed_file_prefixes->push_back(p);
  }
  lo.scan_timeout = std::chrono::seconds(static_cast<long long>(opts.timeout));
  std::string local_files = "refused (no --allow-file-prefix)";
  if (!opts.allow_file_prefixes.empty()) {
    local_files = "only under";
    for (const auto& p : opts.allow_file_prefixes) {
      local_files += " " + p;
      std::error_code ec;
      if (!std::filesystem::is_directory(p, ec)) {
        log->warn("--allow-file-prefix {}: not a directory (yet?): allows nothing while it is not",
                  p);
      }
    }
  }

  asio::io_context io;
  EngineSet engines(global, io.get_executor());
  std::unique_ptr<celery::Worker> worker;
  bool stop_requested = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) {
      return;
    }
    log->warn("signal {}: no new tasks; finishing those in flight", sig);
    stop_requested = true;
    if (worker) {
      worker->stop();
    }
  });
  auto main_task = [&]() -> asio::awaitable<void> {
    std::exception_ptr ep;
    try {
      co_await engines.start_all();
      // No bounty is printed here: libmagic runs only if an engine's categories need it.
      lo.fetch.identify = backend::engines_need_mimetype(engines.engines());
      backend::LocalBackend backend(lo, engines.engines());
      std::size_t n = engines.engines().size();
      worker = std::make_unique<celery::Worker>(
          io.get_executor(), wo,
          [&backend, n](const celery::TaskMessage& m) { return celery::run_task(backend, n, m); });
      log->info("{} ready: queue '{}' on {}, {} at once", wo.nodename, wo.queue,
                celery::describe(wo.broker), wo.concurrency);
      log->info("artifacts: local files {}; http(s) from {} addresses", local_files,
                opts.allow_private_networks ? "all" : "public");
      if (stop_requested) {
        worker->stop();
      }
      auto run = worker->run(k_drain_timeout);
      co_await std::move(run);
      worker.reset();
    } catch (...) {
      ep = std::current_exception();
    }
    co_await engines.stop_all();
    if (ep) {
      std::rethrow_exception(ep);
    }
  };
  std::exception_ptr failure;
  asio::co_spawn(io, main_task(), [&](std::exception_ptr ep) {
    failure = ep;
    signals.cancel();
  });
  io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
  return 0;
}

} // namespace pss::cli

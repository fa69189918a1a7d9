#include "cli/worker.hpp"

#include "backend/celery.hpp"
#include "backend/celery_task.hpp"
#include "backend/factory.hpp"
#include "celery/worker.hpp"
#include "cli/scan_policy.hpp"
#include "cli/service.hpp"
#include "cli/size.hpp"
#include "util/command_loop.hpp"
#include "util/log.hpp"
#include "util/temp_file.hpp"

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

void setup_worker(CLI::App& app, WorkerCliOptions& opts) {
  app.add_option(
      "--broker", opts.broker,
      "Broker URL, redis:// or amqp:// (default: $PSS_BROKER_URL, else redis://127.0.0.1:6379/0)");
  app.add_option(
      "--result-backend", opts.result_backend,
      "Result backend URL, Redis (default: $PSS_RESULT_BACKEND, else the broker if it is Redis)");
  app.add_option("--queue", opts.queue, "Queue to consume (default: the engine's name)");
  app.add_option("--backend", opts.backend,
                 "Where tasks are scanned: in this process, or in --concurrency worker "
                 "processes started once (a scanner that crashes or leaks takes one down, "
                 "not the worker)")
      ->check(CLI::IsMember({"local", "process"}))
      ->capture_default_str();
  app.add_option("--concurrency", opts.concurrency,
                 "Tasks run at once, one message prefetched per slot (default: the number of "
                 "cores)");
  app.add_option("--visibility-timeout", opts.visibility_timeout,
                 "Redis broker: seconds after which the tasks of a worker that died are given "
                 "to a worker again; a live worker extends its own every quarter of it, however "
                 "long they run (RabbitMQ requeues at once, by itself)")
      ->capture_default_str();
  app.add_option("--update-interval", opts.update_interval,
                 "Every N seconds, run the engines' updaters and reload their definitions "
                 "without dropping a scan (0: never; SIGHUP reloads them at any time)")
      ->check(CLI::NonNegativeNumber)
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
  auto urls = backend::celery_urls(opts.broker, opts.result_backend);
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
  ScanPolicy policy;
  policy.backend = opts.backend;
  policy.concurrency = wo.concurrency;
  policy.temp_dir = tmp->path();
  policy.max_size = *max_size;
  policy.timeout = opts.timeout;
  // A task comes from the network, as a webhook's bounty does.
  policy.allow_private_networks = opts.allow_private_networks;
  policy.allowed_file_prefixes = opts.allow_file_prefixes;
  // No bounty is printed here: libmagic runs only if an engine's categories need it.
  policy.identify_only_if_needed = true;
  auto bo = backend_options(global, policy);
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

  CommandLoop loop;
  auto backend = backend::make_backend(std::move(bo), loop.executor());
  std::unique_ptr<celery::Worker> worker;
  ServiceHooks hooks;
  hooks.begin = [&]() -> asio::awaitable<void> {
    worker = std::make_unique<celery::Worker>(
        loop.executor(), wo,
        [b = backend.get()](const celery::TaskMessage& m) { return backend::run_task(*b, m); });
    log->info("{} ready: queue '{}' on {}, {} at once", wo.nodename, wo.queue,
              celery::describe(wo.broker), wo.concurrency);
    log->info("artifacts: local files {}; http(s) from {} addresses", local_files,
              opts.allow_private_networks ? "all" : "public");
    co_return;
  };
  hooks.serve = [&]() -> asio::awaitable<void> {
    auto run = worker->run(k_drain_timeout);
    co_await std::move(run);
    worker.reset();
  };
  hooks.status = [&] {
    return "consuming '" + wo.queue + "' on " + celery::describe(wo.broker) + "; " +
           std::to_string(worker ? worker->in_flight() : 0) + " tasks in flight";
  };
  hooks.stop = [&] {
    if (worker) {
      worker->stop();
    }
  };
  run_service(loop, *backend, *log,
              std::chrono::seconds(static_cast<long long>(opts.update_interval)), "tasks",
              std::move(hooks));
  return 0;
}

} // namespace pss::cli

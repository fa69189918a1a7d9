#include "cli/webhook.hpp"

#include "backend/factory.hpp"
#include "cli/scan_policy.hpp"
#include "cli/service.hpp"
#include "cli/size.hpp"
#include "http/webhook.hpp"
#include "util/command_loop.hpp"
#include "util/log.hpp"
#include "util/memory.hpp"
#include "util/temp_file.hpp"

#include <thread>

namespace pss::cli {

namespace asio = boost::asio;

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
  app.add_option("--update-interval", opts.update_interval,
                 "Every N seconds, run the engines' updaters and reload their definitions "
                 "without dropping a scan (0: never; SIGHUP reloads them at any time)")
      ->check(CLI::NonNegativeNumber)
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
  ScanPolicy policy;
  policy.backend = opts.backend;
  policy.concurrency = wo.workers;
  policy.temp_dir = tmp->path();
  policy.max_size = *max_size;
  policy.timeout = opts.timeout;
  policy.allow_private_networks = opts.allow_private_networks;
  policy.allowed_file_prefixes = opts.allow_file_prefixes;
  policy.broker = opts.broker;
  policy.result_backend = opts.result_backend;
  auto bo = backend_options(global, policy);
  const artifact::FetchOptions fetch = bo.local.fetch;

  CommandLoop loop;
  auto backend = backend::make_backend(std::move(bo), loop.executor());
  if (backend->scans_here()) { // the webhook downloads; a Celery worker fetches for itself
    wo.fetch = fetch;
    wo.fetch->total_timeout = std::chrono::seconds(static_cast<long long>(opts.fetch_timeout));
  }
  http::Webhook hook(loop.executor(), wo, *backend);
  ServiceHooks hooks;
  std::uint16_t bound_port = 0;
  hooks.begin = [&]() -> asio::awaitable<void> {
    auto port = hook.listen();
    if (!port) {
      throw Fatal(port.error().message);
    }
    bound_port = *port;
    log->info("listening on {}:{} ({} backend, {} at once, queue up to {})", wo.bind, *port,
              opts.backend, wo.workers, wo.queue_limit);
    // Readiness for scripts: one line on stderr whatever the log level.
    std::fprintf(stderr, "pssupervise webhook: listening on %s:%u\n", wo.bind.c_str(), *port);
    std::fflush(stderr);
    co_return;
  };
  hooks.serve = [&] { return hook.run(); };
  hooks.stop = [&] { hook.stop(); };
  hooks.status = [&] {
    return "listening on " + wo.bind + ":" + std::to_string(bound_port) + "; " +
           std::to_string(hook.in_flight()) + " bounties in flight";
  };
  run_service(loop, *backend, *log,
              std::chrono::seconds(static_cast<long long>(opts.update_interval)), "bounties",
              std::move(hooks));
  return 0;
}

} // namespace pss::cli

#include "cli/main.hpp"

#include "cli/analyze.hpp"
#include "cli/backend_worker.hpp"
#include "cli/commands.hpp"
#include "cli/engines.hpp"
#include "cli/icap.hpp"
#include "cli/man_page.hpp"
#include "cli/options.hpp"
#include "cli/update.hpp"
#include "cli/webhook.hpp"
#include "cli/worker.hpp"
#include "pss_config.h"
#include "util/error.hpp"
#include "util/log.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>

namespace pss::cli {

namespace {

constexpr int k_exit_error = 2;

std::string split_help() {
  return "Engines: a comma-separated list (default: $PSS_ENGINES, else clamav). See "
         "`pssupervise engines`.";
}

} // namespace

int main(int argc, char** argv) {
  // A peer that closes a socket must give us EPIPE, not kill us.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"pssupervise " PSS_VERSION
               " — keeps antivirus scanners alive and turns each scan request into one verdict."};
  app.set_version_flag("--version", PSS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  std::string engines_arg = "clamav";
  app.add_option("--engine", engines_arg, split_help())
      ->envname("PSS_ENGINES")
      ->capture_default_str();
  app.add_option("--engines-dir", global.engines_dir, "Folder holding engines/<name>/engine.json");
  app.add_flag("-v,--verbose", global.verbose, "More output (analyze: Bounty and Analysis JSON)");
  auto* log_level =
      app.add_option("--log-level", global.log_level,
                     "trace, debug, info, warning, error, off (-v: info, with the engines' "
                     "start-up and shutdown lines)")
          ->capture_default_str();
  app.add_option("--log-format", global.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  if (const char* c = std::getenv("PSS_CACHE"); c != nullptr) {
    global.cache = c;
  }
  app.add_option("--cache", global.cache,
                 "Result cache: a SQLite file (default ~/.cache/pssupervise/results.sqlite, or "
                 "$PSS_CACHE), or off. Answers are reused for the same bytes, engine, versions, "
                 "definitions and settings");
  app.add_option("--cache-ttl", global.cache_ttl, "How long a cached answer is kept (s, m, h, d)")
      ->capture_default_str();
  app.add_flag("--rescan", global.rescan, "Ignore cached answers (and store the new ones)");

  AnalyzeOptions analyze_opts;
  auto* analyze = app.add_subcommand("analyze", "Scan files, directories, stdin or URIs");
  setup_analyze(*analyze, analyze_opts);
  auto* engines = app.add_subcommand("engines", "List the engines found and their drivers");
  WorkerCliOptions worker_opts;
  auto* worker = app.add_subcommand("worker", "A Celery worker: answers pssupervise.analyze "
                                              "tasks from a Redis broker");
  setup_worker(*worker, worker_opts);
  WebhookCliOptions webhook_opts;
  auto* webhook = app.add_subcommand(
      "webhook", "PolySwarm's signed bounty webhook: scans off the request path, answers at "
                 "each bounty's response_url, /metrics");
  setup_webhook(*webhook, webhook_opts);
  IcapCliOptions icap_opts;
  auto* icap = app.add_subcommand(
      "icap", "An ICAP server (RFC 3507) for proxies such as Squid: bodies scanned, answered "
              "204, unmodified, or blocked with a 403 page; /metrics");
  setup_icap(*icap, icap_opts);
  auto* update = app.add_subcommand(
      "update", "Run each engine's updater, then check that its new definitions load "
                "(running services take them on SIGHUP)");
  CommandsOptions commands_opts;
  auto* commands =
      app.add_subcommand("commands", "An engine's commands: info, scan_file, update, ...");
  setup_commands(*commands, commands_opts);
  // Hidden (group ""): a worker process of `analyze --backend process`, started by it.
  BackendWorkerOptions backend_worker_opts;
  auto* backend_worker =
      app.add_subcommand("__worker", "A worker of the process backend (internal)")->group("");
  setup_backend_worker(*backend_worker, backend_worker_opts);
  // Hidden: pssupervise(1) in roff, from this same App (the build installs it).
  auto* man = app.add_subcommand("__man", "The manual page (roff)")->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : k_exit_error;
  }

  global.engines.clear();
  for (std::size_t start = 0; start <= engines_arg.size();) {
    auto comma = engines_arg.find(',', start);
    std::string name = engines_arg.substr(start, comma - start);
    if (!name.empty()) {
      global.engines.push_back(name);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  if (log_level->count() == 0 && (global.verbose || analyze_opts.verbose)) {
    global.log_level = "info"; // -v shows the supervisor's lifecycle lines too
  }
  if (!log::set_level(global.log_level)) {
    std::fprintf(stderr, "pssupervise: error: unknown --log-level '%s'\n",
                 global.log_level.c_str());
    return k_exit_error;
  }
  log::set_format(global.log_format);

  try {
    if (man->parsed()) {
      std::fputs(man_page(app, PSS_VERSION).c_str(), stdout);
      return 0;
    }
    if (analyze->parsed()) {
      return run_analyze(global, analyze_opts);
    }
    if (webhook->parsed()) {
      return run_webhook(global, webhook_opts);
    }
    if (icap->parsed()) {
      return run_icap(global, icap_opts);
    }
    if (worker->parsed()) {
      return run_worker(global, worker_opts);
    }
    if (backend_worker->parsed()) {
      return run_backend_worker(global, backend_worker_opts);
    }
    if (engines->parsed()) {
      return run_engines(global);
    }
    if (update->parsed()) {
      return run_update(global);
    }
    if (commands->parsed()) {
      commands_opts.words = commands->remaining();
      return run_commands(global, commands_opts);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pssupervise: error: %s\n", e.what());
    return k_exit_error;
  }
  return k_exit_error;
}

} // namespace pss::cli

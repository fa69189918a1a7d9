// `pssupervise worker`: a Celery worker (Redis or RabbitMQ broker, Redis results) that answers
// "pssupervise.analyze" tasks with this host's engines, started once.
#pragma once

#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>
#include <vector>

namespace pss::cli {

struct WorkerCliOptions {
  std::string broker;            // --broker, else $PSS_BROKER_URL, else redis://127.0.0.1:6379/0
  std::string result_backend;    // --result-backend, else $PSS_RESULT_BACKEND, else a Redis broker
  std::string queue;             // --queue, else the engine's name
  std::string backend = "local"; // or "process": each task scanned in a worker process
  std::size_t concurrency = 0;   // 0: the number of cores
  double visibility_timeout = 3600;
  double timeout = 0; // seconds per scan; 0: the engine's own
  std::string max_size = "512M";
  // A task comes from whoever can write to the queue: as the webhook, no local file and no
  // internal address unless allowed.
  std::vector<std::string> allow_file_prefixes; // --allow-file-prefix; none: no local files
  bool allow_private_networks = false;
  double update_interval = 0; // seconds between scheduled updates; 0: SIGHUP only
};

void setup_worker(CLI::App& app, WorkerCliOptions& opts);
int run_worker(const GlobalOptions& global, const WorkerCliOptions& opts);

} // namespace pss::cli

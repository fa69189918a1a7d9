// `pssupervise worker`: a Celery worker on Redis that answers "pssupervise.analyze" tasks
// with this host's engines, started once.
#pragma once

#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>

namespace pss::cli {

struct WorkerCliOptions {
  std::string broker;          // --broker, else $PSS_BROKER_URL, else redis://127.0.0.1:6379/0
  std::string result_backend;  // --result-backend, else $PSS_RESULT_BACKEND, else the broker
  std::string queue;           // --queue, else the engine's name
  std::size_t concurrency = 0; // 0: the number of cores
  double visibility_timeout = 3600;
  double timeout = 0; // seconds per scan; 0: the engine's own
  std::string max_size = "512M";
};

void setup_worker(CLI::App& app, WorkerCliOptions& opts);
int run_worker(const GlobalOptions& global, const WorkerCliOptions& opts);

// The broker and result backend from options, then the environment, then the default.
std::string broker_url(const std::string& option);
std::string result_backend_url(const std::string& option, const std::string& broker);

} // namespace pss::cli

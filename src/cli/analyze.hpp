// `pssupervise analyze`: scan inputs with the selected engines and print one verdict each.
#pragma once

#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>
#include <vector>

namespace pss::cli {

struct AnalyzeOptions {
  std::vector<std::string> inputs;
  std::string backend = "local";
  std::size_t concurrency = 0; // 0: number of cores
  std::string format = "text";
  std::string type = "file"; // file | url | bounty
  bool verbose = false;
  double timeout = 0; // seconds per scan; 0: the engine's own
  std::string max_size = "512M";
  // --backend celery
  std::string broker;         // default: $PSS_BROKER_URL, else redis://127.0.0.1:6379/0
  std::string result_backend; // default: $PSS_RESULT_BACKEND, else the broker
  std::string queue;          // default: each engine's name
  bool no_wait = false;       // print the task ids, do not wait for results
  double wait_timeout = 600;  // seconds for each result
  std::string on_success;     // the caller's callbacks: a command line, split on blanks
  std::string on_error;
  double callback_timeout = 30;
};

void setup_analyze(CLI::App& app, AnalyzeOptions& opts);
// Returns the exit status (0 nothing malicious, 1 malicious found, 2 an error).
int run_analyze(const GlobalOptions& global, const AnalyzeOptions& opts);

} // namespace pss::cli

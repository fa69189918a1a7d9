// `pssupervise __worker` (hidden): the options of one worker process of the `process` backend,
// and the command line that starts one (backend/process_worker.hpp does the work).
#pragma once

#include "artifact/fetch.hpp"
#include "backend/process.hpp"
#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>
#include <vector>

namespace pss::cli {

struct BackendWorkerOptions {
  std::size_t concurrency = 1; // jobs scanned at once in this process
  double timeout = 0;          // seconds per scan; 0: the engine's own
  std::string max_size = "512M";
  // The webhook's policy for what a bounty may fetch (artifact/fetch.hpp): by default, all.
  bool deny_private_networks = false;
  bool restrict_files = false; // then only under these folders:
  std::vector<std::string> allowed_file_prefixes;
  bool no_identify = false; // libmagic only when an engine's categories need it
  bool no_digest = false;   // a local file's sha256 only when an engine or a bounty needs it
};

void setup_backend_worker(CLI::App& app, BackendWorkerOptions& opts);
// Returns the exit status (backend::run_process_worker).
int run_backend_worker(const GlobalOptions& global, const BackendWorkerOptions& opts);

// Options of a `process` backend whose `workers` processes run this same binary as
// `pssupervise <global options> __worker <worker options>`.
backend::ProcessOptions process_backend_options(const GlobalOptions& global, std::size_t workers,
                                                const BackendWorkerOptions& worker,
                                                const artifact::FetchOptions& fetch);

} // namespace pss::cli

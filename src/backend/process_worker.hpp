// The worker side of the `process` backend (`pssupervise __worker`): it starts its engines
// once, says hello (`{"ready": true, ...}`, or `{"error": "..."}` and exits 2), then answers
// each Job read as a JSON line on stdin with one JobResult line on stdout (backend/job.hpp),
// scanning through a LocalBackend. EOF on stdin or SIGTERM: it stops its engines and exits.
// Its logs go to stderr.
#pragma once

#include "backend/cached.hpp"
#include "backend/local.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pss::backend {

struct ProcessWorkerOptions {
  std::vector<std::string> engines;
  std::filesystem::path engines_dir;
  // Concurrency, fetch policy and timeout; the temp folder is the worker's own.
  LocalOptions local;
  std::optional<CacheOptions> cache; // the parent's: one store shared by every worker
  // Set when its options could not be used: said as its hello, and it exits 2.
  std::optional<std::string> error;
};

// Returns the exit status: 0 after EOF on stdin, 2 if its engines could not start,
// 128+signal after SIGTERM/SIGINT.
int run_process_worker(ProcessWorkerOptions opts);

} // namespace pss::backend

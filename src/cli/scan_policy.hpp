// The backend options every command builds from its scanning policy (--backend, concurrency,
// sizes, timeouts, what may be fetched, the cache), whichever backend runs the scans.
#pragma once

#include "backend/factory.hpp"
#include "cli/options.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pss::cli {

// What a command lets its bounties scan and fetch, and where: the same for every backend.
struct ScanPolicy {
  std::string backend = "local"; // --backend
  std::size_t concurrency = 1;   // scans at once (process: its worker processes)
  std::filesystem::path temp_dir;
  std::uint64_t max_size = 512ULL << 20; // largest artifact, in bytes
  double timeout = 0;                    // seconds per scan; 0: the engine's
  // A request from the network names no internal address and no local file unless allowed;
  // `analyze` allows both (nullopt: any local file).
  bool allow_private_networks = false;
  std::optional<std::vector<std::string>> allowed_file_prefixes = std::vector<std::string>{};
  bool identify_only_if_needed = false; // libmagic only when an engine's categories need it
  bool digest_only_if_needed = false;   // a local file's sha256 only when an engine needs it
  std::string broker, result_backend;   // --backend celery
};

backend::BackendOptions backend_options(const GlobalOptions& global, const ScanPolicy& policy);

} // namespace pss::cli

#include "cli/backend_worker.hpp"

#include "backend/process_worker.hpp"
#include "cli/cache_options.hpp"
#include "cli/size.hpp"

#include <fmt/format.h>

namespace pss::cli {

namespace {

constexpr std::string_view k_program = "/proc/self/exe"; // this very binary, even if replaced

} // namespace

void setup_backend_worker(CLI::App& app, BackendWorkerOptions& opts) {
  app.add_option("--concurrency", opts.concurrency, "Jobs scanned at once in this process")
      ->capture_default_str();
  app.add_option("--timeout", opts.timeout, "Seconds allowed per scan (default: the engine's)");
  app.add_flag("--deny-private-networks", opts.deny_private_networks,
               "Refuse http(s) artifacts on loopback and private addresses");
  app.add_flag("--restrict-files", opts.restrict_files,
               "Refuse local files but under --allow-file-prefix");
  app.add_option("--allow-file-prefix", opts.allowed_file_prefixes, "A folder files may be in");
  app.add_flag("--no-identify", opts.no_identify,
               "libmagic only when an engine's categories need the mimetype");
  app.add_flag("--no-digest", opts.no_digest,
               "A local file's sha256 only when an engine or a bounty needs it");
  app.add_option("--max-size", opts.max_size, "Largest artifact fetched (e.g. 512M, 2G)")
      ->capture_default_str();
}

int run_backend_worker(const GlobalOptions& global, const BackendWorkerOptions& opts) {
  backend::ProcessWorkerOptions w;
  w.engines = global.engines;
  w.engines_dir = global.engines_dir;
  if (auto c = cache_options(global)) {
    w.cache = *c;
  } else {
    w.error = c.error().message;
  }
  backend::LocalOptions& lo = w.local;
  lo.concurrency = opts.concurrency;
  if (auto max_size = parse_size(opts.max_size)) {
    lo.fetch.max_size = *max_size;
  } else {
    w.error = "--max-size: " + max_size.error().message;
  }
  lo.fetch.allow_private_networks = !opts.deny_private_networks;
  lo.identify_only_if_needed = opts.no_identify;
  lo.digest_only_if_needed = opts.no_digest;
  if (opts.restrict_files) {
    lo.fetch.allowed_file_prefixes.emplace(opts.allowed_file_prefixes.begin(),
                                           opts.allowed_file_prefixes.end());
  }
  lo.scan_timeout = std::chrono::seconds(static_cast<long long>(opts.timeout));
  return backend::run_process_worker(std::move(w));
}

backend::ProcessOptions process_backend_options(const GlobalOptions& global, std::size_t workers,
                                                const BackendWorkerOptions& worker,
                                                const artifact::FetchOptions& fetch) {
  backend::ProcessOptions po;
  po.workers = std::max<std::size_t>(1, workers);
  std::string engines;
  for (const auto& e : global.engines) {
    engines += (engines.empty() ? "" : ",") + e;
  }
  po.argv = {std::string(k_program), "--engine", engines};
  if (!global.engines_dir.empty()) {
    po.argv.insert(po.argv.end(), {"--engines-dir", global.engines_dir});
  }
  const auto cache = cache_argv(global);
  po.argv.insert(po.argv.end(), cache.begin(), cache.end());
  po.argv.insert(po.argv.end(),
                 {"--log-level", global.log_level, "--log-format", global.log_format, "__worker",
                  "--concurrency", std::to_string(std::max<std::size_t>(1, worker.concurrency)),
                  "--max-size", worker.max_size});
  if (worker.timeout > 0) {
    po.argv.insert(po.argv.end(), {"--timeout", fmt::format("{}", worker.timeout)});
  }
  if (worker.deny_private_networks) {
    po.argv.push_back("--deny-private-networks");
  }
  if (worker.restrict_files) {
    po.argv.push_back("--restrict-files");
    for (const auto& p : worker.allowed_file_prefixes) {
      po.argv.insert(po.argv.end(), {"--allow-file-prefix", p});
    }
  }
  if (worker.no_identify) {
    po.argv.push_back("--no-identify");
  }
  if (worker.no_digest) {
    po.argv.push_back("--no-digest");
  }
  po.engines = global.engines;
  po.engines_dir = global.engines_dir;
  po.fetch = fetch;
  return po;
}

} // namespace pss::cli

#include "cli/scan_policy.hpp"

#include "cli/backend_worker.hpp"
#include "cli/cache_options.hpp"

namespace pss::cli {

backend::BackendOptions backend_options(const GlobalOptions& global, const ScanPolicy& policy) {
  backend::BackendOptions bo;
  bo.name = policy.backend;
  bo.engines = global.engines;
  bo.engines_dir = global.engines_dir;
  bo.cache = cache_options(global).value();
  backend::LocalOptions& lo = bo.local;
  lo.concurrency = policy.concurrency;
  lo.identify_only_if_needed = policy.identify_only_if_needed;
  lo.digest_only_if_needed = policy.digest_only_if_needed;
  lo.fetch.temp_dir = policy.temp_dir;
  lo.fetch.max_size = policy.max_size;
  lo.fetch.allow_private_networks = policy.allow_private_networks;
  if (policy.allowed_file_prefixes) {
    lo.fetch.allowed_file_prefixes.emplace(policy.allowed_file_prefixes->begin(),
                                           policy.allowed_file_prefixes->end());
  }
  lo.scan_timeout = std::chrono::seconds(static_cast<long long>(policy.timeout));
  BackendWorkerOptions bw; // --backend process: the same policy in each worker process
  bw.timeout = policy.timeout;
  bw.max_size = std::to_string(policy.max_size);
  bw.deny_private_networks = !policy.allow_private_networks;
  bw.restrict_files = policy.allowed_file_prefixes.has_value();
  bw.allowed_file_prefixes = policy.allowed_file_prefixes.value_or(std::vector<std::string>{});
  bw.no_identify = policy.identify_only_if_needed;
  bw.no_digest = policy.digest_only_if_needed;
  bo.process = process_backend_options(global, policy.concurrency, bw, lo.fetch);
  bo.celery.broker_url = policy.broker;
  bo.celery.result_backend_url = policy.result_backend;
  return bo;
}

} // namespace pss::cli

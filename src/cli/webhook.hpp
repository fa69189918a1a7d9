// `pssupervise webhook`: PolySwarm's signed bounty webhook in front of the engines.
#pragma once

#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>
#include <vector>

namespace pss::cli {

struct WebhookCliOptions {
  int port = 8080;
  std::string bind = "127.0.0.1";
  std::string backend = "local";
  std::string secret; // else $PSS_WEBHOOK_SECRET
  bool insecure = false;
  std::size_t concurrency = 0; // bounties scanned at once; 0: the number of cores
  std::size_t queue_limit = 1000;
  std::string body_limit = "1M";
  std::vector<std::string> allow_file_prefixes;
  bool allow_private_networks = false;
  double update_interval = 0; // seconds between scheduled updates; 0: SIGHUP only
  double timeout = 0;
  std::string max_size = "512M";
  std::size_t fetch_concurrency = 16;
  double fetch_timeout = 120;
  std::size_t delivery_concurrency = 16;
  double drain_timeout = 30;
  std::string broker; // --backend celery
  std::string result_backend;
};

void setup_webhook(CLI::App& app, WebhookCliOptions& opts);
int run_webhook(const GlobalOptions& global, const WebhookCliOptions& opts);

} // namespace pss::cli

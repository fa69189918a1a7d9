// `pssupervise icap`: an ICAP server (RFC 3507) in front of the engines, for proxies (Squid) and
// file services: RESPMOD and REQMOD bodies scanned, answered 204, unmodified, or blocked.
#pragma once

#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>

namespace pss::cli {

struct IcapCliOptions {
  int port = 1344; // RFC 3507's port
  std::string bind = "127.0.0.1";
  std::string backend = "local";
  std::size_t concurrency = 0; // requests scanned at once; 0: the number of cores
  double timeout = 0;          // seconds per scan; 0: each engine's own
  std::string on_unknown = "block";
  std::string body_limit = "100M";
  std::size_t max_connections = 1000;
  int metrics_port = -1; // -1: none
  double idle_timeout = 60;
  double read_timeout = 30;
  double update_interval = 0; // seconds between scheduled updates; 0: SIGHUP only
  double drain_timeout = 30;
  std::string broker; // --backend celery
  std::string result_backend;
};

void setup_icap(CLI::App& app, IcapCliOptions& opts);
int run_icap(const GlobalOptions& global, const IcapCliOptions& opts);

} // namespace pss::cli

#include "cli/icap.hpp"

#include "cli/scan_policy.hpp"
#include "cli/service.hpp"
#include "cli/size.hpp"
#include "icap_server/server.hpp"
#include "pss_config.h"
#include "util/command_loop.hpp"
#include "util/log.hpp"
#include "util/memory.hpp"
#include "util/temp_file.hpp"

#include <algorithm>
#include <sys/resource.h>
#include <thread>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// Connections beyond what the file descriptors allow would fail at accept() or, worse, at a
// spool file: the soft limit is raised to the hard one, and the cap lowered to fit it (an open
// request holds its socket and its spool file; the engines and scans need some more).
std::size_t fit_connections(std::size_t wanted, std::size_t concurrency, spdlog::logger& log) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    return wanted;
  }
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      lim = raised;
    }
  }
  if (lim.rlim_cur == RLIM_INFINITY) {
    return wanted;
  }
  const std::size_t reserve = 256 + 8 * concurrency;
  const std::size_t fits =
      lim.rlim_cur > reserve + 2 ? static_cast<std::size_t>((lim.rlim_cur - reserve) / 2) : 1;
  if (wanted > fits) {
    log.warn("--max-connections {} lowered to {}: {} file descriptors (ulimit -n)", wanted, fits,
             lim.rlim_cur);
    return fits;
  }
  return wanted;
}

} // namespace

void setup_icap(CLI::App& app, IcapCliOptions& opts) {
  app.footer(
      "Service paths: icap://HOST:PORT/avscan scans with every --engine, icap://HOST:PORT/NAME "
      "with that engine alone. A clean body is answered 204 (or returned unmodified when the "
      "client did not allow 204), a malicious one with X-Infection-Found, X-Virus-ID, "
      "X-Violations-Found and an HTTP 403 page naming the threats. SIGHUP reloads the engines' "
      "definitions (the ISTag changes with them); SIGTERM answers the requests in flight, then "
      "exits.");
  app.add_option("-p,--port", opts.port, "Port to listen on (0: any free port)")
      ->capture_default_str();
  app.add_option("--bind", opts.bind, "Address to listen on")->capture_default_str();
  app.add_option("--backend", opts.backend, "Where bodies are scanned")
      ->check(CLI::IsMember({"local", "process", "celery"}))
      ->capture_default_str();
  app.add_option("--concurrency", opts.concurrency,
                 "Requests scanned at once; others wait for a slot (default: the number of "
                 "cores; --backend process: its worker processes)");
  app.add_option("--timeout", opts.timeout, "Seconds allowed per scan (default: the engine's)");
  app.add_option("--on-unknown", opts.on_unknown,
                 "When no verdict can be made (an engine failed or timed out, a body over "
                 "--body-limit): block (an HTTP 403 page saying why) or allow (as clean); both "
                 "add X-Scan-Error")
      ->check(CLI::IsMember({"allow", "block"}))
      ->capture_default_str();
  app.add_option("--body-limit", opts.body_limit,
                 "Largest body scanned; a larger one is not kept (its rest is read and dropped) "
                 "and is answered by --on-unknown")
      ->capture_default_str();
  app.add_option("--max-connections", opts.max_connections,
                 "Connections at once (also OPTIONS' Max-Connections); beyond, the one idle the "
                 "longest is closed, or the new one refused (503) when none is idle")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--metrics-port", opts.metrics_port,
                 "Serve GET /metrics (Prometheus text) on this port of --bind (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--idle-timeout", opts.idle_timeout,
                 "Seconds a connection may wait for its next request (keep-alive)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--read-timeout", opts.read_timeout,
                 "Seconds for a request's head once begun, and for each read of its body")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--update-interval", opts.update_interval,
                 "Every N seconds, run the engines' updaters and reload their definitions "
                 "without dropping a scan (0: never; SIGHUP reloads them at any time)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--drain-timeout", opts.drain_timeout,
                 "On SIGTERM: seconds for the requests in flight to be answered; then their "
                 "connections are closed")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--broker", opts.broker, "--backend celery: the broker URL");
  app.add_option("--result-backend", opts.result_backend, "--backend celery: the result backend");
}

int run_icap(const GlobalOptions& global, const IcapCliOptions& opts) {
  auto log = log::get("icap");
  tune_allocator(); // buffers come and go with connections: their memory goes back
  if (opts.port < 0 || opts.port > 65535) {
    throw Fatal("--port must be 0..65535");
  }
  auto body_limit = parse_size(opts.body_limit);
  if (!body_limit || *body_limit == 0) {
    throw Fatal("--body-limit: " +
                (body_limit ? std::string("must be at least 1 byte") : body_limit.error().message));
  }
  icap_server::ServerOptions so;
  so.bind = opts.bind;
  so.port = static_cast<std::uint16_t>(opts.port);
  if (opts.metrics_port >= 0) {
    so.metrics_port = static_cast<std::uint16_t>(opts.metrics_port);
  }
  so.concurrency =
      opts.concurrency != 0 ? opts.concurrency : std::max(1U, std::thread::hardware_concurrency());
  so.max_connections = fit_connections(opts.max_connections, so.concurrency, *log);
  so.body_limit = *body_limit;
  so.on_unknown =
      opts.on_unknown == "allow" ? icap_server::OnUnknown::allow : icap_server::OnUnknown::block;
  so.idle_timeout = millis(opts.idle_timeout);
  so.read_timeout = millis(opts.read_timeout);
  so.drain_timeout = std::chrono::seconds(static_cast<long long>(opts.drain_timeout));
  so.version = PSS_VERSION;

  auto tmp = TempDir::create(temp_base_dir(), "pssupervise-icap-");
  if (!tmp) {
    throw Fatal(tmp.error().message + " (set TMPDIR to a writable directory)");
  }
  so.temp_dir = tmp->path();
  ScanPolicy policy;
  policy.backend = opts.backend;
  policy.concurrency = so.concurrency;
  policy.temp_dir = tmp->path();
  policy.max_size = *body_limit;
  policy.timeout = opts.timeout;
  // An ICAP answer carries no mimetype: libmagic only if an engine's categories need it.
  policy.identify_only_if_needed = true;
  // Nothing is fetched: a body is the request's own file. No request names a file or a host.
  policy.broker = opts.broker;
  policy.result_backend = opts.result_backend;
  auto bo = backend_options(global, policy); // a proxy sees the same bytes again and again

  CommandLoop loop;
  auto backend = backend::make_backend(std::move(bo), loop.executor());
  icap_server::Server server(loop.executor(), so, *backend);
  ServiceHooks hooks;
  std::uint16_t bound_port = 0;
  hooks.begin = [&]() -> asio::awaitable<void> {
    auto port = server.listen();
    if (!port) {
      throw Fatal(port.error().message);
    }
    bound_port = *port;
    log->info("listening on {}:{} ({} backend, {} scans at once, up to {} connections, ISTag {})",
              so.bind, *port, opts.backend, so.concurrency, so.max_connections, server.istag());
    // Readiness for scripts: lines on stderr whatever the log level (metrics first).
    if (auto mp = server.metrics_port()) {
      std::fprintf(stderr, "pssupervise icap: metrics on %s:%u\n", so.bind.c_str(), *mp);
    }
    std::fprintf(stderr, "pssupervise icap: listening on %s:%u\n", so.bind.c_str(), *port);
    std::fflush(stderr);
    co_return;
  };
  hooks.serve = [&] { return server.run(); };
  hooks.stop = [&] { server.stop(); };
  hooks.reloaded = [&] { server.definitions_changed(); };
  hooks.status = [&] {
    return "listening on " + so.bind + ":" + std::to_string(bound_port) + "; " +
           std::to_string(server.connections()) + " connections, " +
           std::to_string(server.scanning()) + " scanning";
  };
  run_service(loop, *backend, *log,
              std::chrono::seconds(static_cast<long long>(opts.update_interval)), "requests",
              std::move(hooks));
  return 0;
}

} // namespace pss::cli

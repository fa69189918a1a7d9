// The ICAP server's inside, shared by its own source files only (it holds Asio): server.cpp
// (connections: accept, the cap, sessions, the drain), exchange.cpp (one request: reading,
// spooling, previews, the answer), scan.cpp (the body to the backend).
#pragma once

#include "http/engine_metrics.hpp"
#include "http/metrics.hpp"
#include "http/metrics_listener.hpp"
#include "http/slots.hpp"
#include "icap/request_reader.hpp"
#include "icap_server/answer.hpp"
#include "icap_server/server.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace pss::icap_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A connection: its stream and whether it waits for a request (then it may be closed to make
// room for a new one).
struct Conn {
  explicit Conn(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  std::uint64_t id = 0;
  std::string peer;
  bool idle = false;
  bool evicted = false;
  std::list<Conn*>::iterator idle_at;
};

struct Server::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor ex;
  ServerOptions opts;
  backend::Backend* backend;
  std::shared_ptr<spdlog::logger> log = log::get("icap");
  tcp::acceptor acceptor{ex};
  icap::RequestReader::Limits limits;

  http::Metrics metrics;
  http::Counter& requests = metrics.counter("pss_icap_requests_total",
                                            "ICAP requests by method and answer status "
                                            "(method '-': no request line could be read)",
                                            {"method", "status"});
  http::Counter& answers = metrics.counter(
      "pss_icap_answers_total",
      "Answers to REQMOD and RESPMOD by outcome: clean, infected, unknown_allowed and "
      "unknown_blocked (--on-unknown), too_large (over --body-limit, without Allow: 204)",
      {"outcome"});
  http::Histogram& request_seconds = metrics.histogram(
      "pss_icap_request_seconds",
      "Time from a request's first byte to the end of its answer, by method", {"method"});
  http::Counter& scans =
      metrics.counter("pss_scans_total", "Scans by engine and verdict", {"engine", "verdict"});
  http::Histogram& latency =
      metrics.histogram("pss_scan_latency_seconds",
                        "Time the engines took to answer one request (the scan alone)", {"engine"});
  http::Gauge& in_flight = metrics.gauge("pss_scans_in_flight", "Requests being scanned");
  http::Gauge& open = metrics.gauge("pss_icap_connections", "Open ICAP connections");
  http::Gauge& open_idle =
      metrics.gauge("pss_icap_connections_idle", "Open ICAP connections waiting for a request");
  http::Counter& accepted =
      metrics.counter("pss_icap_connections_total", "ICAP connections accepted");
  http::Counter& turned_away = metrics.counter(
      "pss_icap_connections_turned_away_total",
      "Connections closed at --max-connections: evicted (idle the longest, closed to make room "
      "for a new one), refused (a new one answered 503: none was idle)",
      {"how"});
  http::EngineMetrics engine_metrics{metrics};
  std::unique_ptr<http::MetricsListener> metrics_listener;

  http::Slots scan_slots{ex, opts.concurrency};
  std::size_t scanning = 0;

  std::unordered_set<Conn*> conns;
  std::list<Conn*> idle; // the one idle the longest first
  std::size_t evicting = 0;
  std::uint64_t next_id = 0;
  bool stopping = false;
  asio::steady_timer wake{ex, Clock::time_point::max()}; // run() waits on it

  std::string istag;
  std::uint64_t generation = 0; // reloads, for an ISTag whose versions are not known here
  std::string started_at =
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count());

  Impl(asio::any_io_executor e, ServerOptions o, backend::Backend& b)
      : ex(std::move(e)), opts(std::move(o)), backend(&b) {}

  void refresh_istag();

  // The engines a service path names: every one for "avscan", one by its name; else none.
  std::optional<std::vector<std::string>> route(const std::string& service) const;

  std::string service_text(const std::string& service) const;

  std::string render_metrics();

  void mark_idle(Conn& c);

  void mark_busy(Conn& c);

  void close(Conn& c);

  void forget(Conn& c);

  // The connection limit is reached: the one idle the longest makes room, else the new one is
  // refused. True: the new one may go on.
  bool make_room(tcp::socket& sock);

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self);

  static asio::awaitable<bool> send(Conn& c, std::string_view data,
                                    std::chrono::milliseconds timeout);

  static asio::awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c);

  // After an error answer: our side is shut, and what the client still sends is read and
  // dropped for a moment, so that closing with unread bytes does not reset the connection
  // before the client has read the answer (a lingering close, as HTTP servers do).
  asio::awaitable<void> linger(Conn& c);

  // What a request's body became.
  struct Body {
    std::shared_ptr<TempFile> spool; // null when not kept
    std::uint64_t kept = 0;
    std::uint64_t seen = 0;
    std::uint64_t sent = 0; // its first bytes sent before the verdict (k_trickle_every)
    bool over = false;      // over --body-limit: the rest was read and dropped
    std::string error;      // the spool could not be written
    Sha256 hash;            // of what was kept, as it came: the scan need not read it again
    std::string sha256;     // its digest, once the body is complete
  };

  void keep_body(Body& b, std::string_view bytes);

  // After an early head: the body's next byte(s), as its share of what came, if due.
  asio::awaitable<bool> trickle(Conn& c, Body& body);

  // Reads one request from `in` and the connection, answers it; true if the connection stays.
  static asio::awaitable<bool> handle_request(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c,
                                              std::string& in);

  // After an early head (k_commit_after): the body follows if the verdict lets it through;
  // otherwise the connection ends there (with at most the bytes trickle() sent).
  asio::awaitable<bool> finish_committed(std::shared_ptr<Conn> c, const icap::Request& r,
                                         const Body& body, const Verdict& verdict,
                                         Clock::time_point started);

  // The body unmodified, from its spool file, after `head`.
  asio::awaitable<bool> echo(std::shared_ptr<Conn> c, const Body& body, std::string out);

  // Scans the spooled body with the engines of its service (a scan slot held meanwhile).
  asio::awaitable<Verdict> scan(std::shared_ptr<Impl> self, const icap::Request& r,
                                const Body& body, const std::vector<std::string>& engines);

  // For a backend that scans elsewhere (Celery): the bytes travel in the bounty, as a data: URI
  // (in memory for the time it is sent: --body-limit bounds it).
  Result<model::Bounty> remote_bounty(const Body& body);
};

} // namespace pss::icap_server

#include "icap_server/server.hpp"

#include "http/engine_metrics.hpp"
#include "http/metrics.hpp"
#include "http/metrics_listener.hpp"
#include "http/slots.hpp"
#include "icap/request_reader.hpp"
#include "model/bounty.hpp"
#include "util/base64.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/size.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <list>
#include <unistd.h>
#include <unordered_set>

namespace pss::icap_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t k_read_size = 64 * 1024;     // a read while a request is in progress
constexpr std::size_t k_idle_read_size = 4 * 1024; // a read waiting for a request's first byte
constexpr std::size_t k_echo_chunk = 64 * 1024;    // a body echoed from its spool file
constexpr std::size_t k_max_input_name = 2048;     // a job's input (the HTTP URL), for logs
// A client that did not allow 204 keeps no copy of the body, and Squid (5.7, bug 5352) then
// stops sending a body over 64 KiB until the answer has begun: past this much body, the
// answer's head (the message unmodified) goes out before the verdict, and its body only after
// it; a body found infected then ends the connection after the head, with none of it sent.
constexpr std::uint64_t k_commit_after = 32 * 1024;
// And Squid then waits for the answer's body to move before it reads more from the origin
// whenever its 64 KiB buffer towards us fills (bug 5352, PR 1777): one byte of the body goes
// out for each this much received, so at most 1/65536 of it before the verdict.
constexpr std::uint64_t k_trickle_every = 64 * 1024;
// A lingering close after an error answer: at most this long between reads, this much read.
constexpr auto k_linger_time = std::chrono::seconds(2);
constexpr std::size_t k_linger_bytes = 1024 * 1024;
// A scan elsewhere (Celery) is bounded by its bounty's expiration.
constexpr auto k_remote_expiry = std::chrono::seconds(300);

double seconds_since(Clock::time_point t) {
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

// The Content-Length of the encapsulated HTTP message whose body this is, if it says one.
std::optional<std::uint64_t> content_length(const icap::Request& r) {
  const icap::Head& h = r.line.method == "RESPMOD" ? r.res_head : r.req_head;
  const std::string* v = h.fields.find("Content-Length");
  std::uint64_t n = 0;
  if (v == nullptr || v->empty() ||
      std::from_chars(v->data(), v->data() + v->size(), n).ptr != v->data() + v->size()) {
    return std::nullopt;
  }
  return n;
}

// Where the body came from, as the job's input (logs, the bounty's URI): the HTTP request's URL.
std::string input_name(const icap::Request& r) {
  std::string_view line = r.req_head.start_line;
  const auto sp1 = line.find(' ');
  std::string target;
  if (sp1 != std::string_view::npos) {
    line.remove_prefix(sp1 + 1);
    target = std::string(line.substr(0, line.find(' ')));
  }
  if (!target.empty() && target.front() == '/') {
    if (const std::string* host = r.req_head.fields.find("Host")) {
      target = "http://" + *host + target;
    }
  }
  if (target.empty()) {
    target = r.url.text();
  }
  return header_value(target, k_max_input_name);
}

std::string method_label(const icap::RequestReader& reader) {
  // Only what the reader accepts, so that the label's values stay few.
  return reader.request().line.method.empty() ? "-" : reader.request().line.method;
}

} // namespace

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

  void refresh_istag() {
    std::vector<EngineVersion> versions;
    bool known = true;
    for (const auto& e : backend->engines()) {
      auto id = backend->identity(e.name);
      if (!id) {
        known = false;
        versions.push_back({e.name, "", ""});
        continue;
      }
      versions.push_back(
          {e.name, id->engine_version, id->definitions_version + "/" + id->settings});
    }
    // Versions unknown here (an engine that reports none, a backend elsewhere): then the ISTag
    // changes at each start and reload, which may be more often than needed, never less.
    std::string tag =
        make_istag(versions, known ? "" : started_at + "#" + std::to_string(generation));
    if (tag != istag) {
      if (!istag.empty()) {
        log->info("ISTag {} (was {})", tag, istag);
      }
      istag = std::move(tag);
    }
  }

  // The engines a service path names: every one for "avscan", one by its name; else none.
  std::optional<std::vector<std::string>> route(const std::string& service) const {
    if (service == "avscan") {
      return std::vector<std::string>{};
    }
    for (const auto& e : backend->engines()) {
      if (e.name == service) {
        return std::vector<std::string>{service};
      }
    }
    return std::nullopt;
  }

  std::string service_text(const std::string& service) const {
    std::string names;
    for (const auto& e : backend->engines()) {
      if (service == "avscan" || e.name == service) {
        names += (names.empty() ? "" : ", ") + e.name;
      }
    }
    return "pssupervise " + opts.version + " (" + names + ")";
  }

  std::string render_metrics() {
    engine_metrics.update(backend->states());
    open.set({}, static_cast<double>(conns.size() - evicting));
    open_idle.set({}, static_cast<double>(idle.size()));
    in_flight.set({}, static_cast<double>(scanning));
    return metrics.render();
  }

  void mark_idle(Conn& c) {
    if (!c.idle) {
      c.idle = true;
      c.idle_at = idle.insert(idle.end(), &c);
    }
  }

  void mark_busy(Conn& c) {
    if (c.idle) {
      idle.erase(c.idle_at);
      c.idle = false;
    }
  }

  void close(Conn& c) {
    boost::system::error_code ignored;
    c.stream.socket().close(ignored); // its pending read ends: the session goes
  }

  void forget(Conn& c) {
    mark_busy(c);
    if (c.evicted) {
      --evicting;
    }
    conns.erase(&c);
    if (stopping) {
      wake.cancel();
    }
  }

  // The connection limit is reached: the one idle the longest makes room, else the new one is
  // refused. True: the new one may go on.
  bool make_room(tcp::socket& sock) {
    if (conns.size() - evicting < opts.max_connections) {
      return true;
    }
    if (!idle.empty()) {
      Conn& old = *idle.front();
      mark_busy(old);
      old.evicted = true;
      ++evicting;
      close(old);
      turned_away.inc({"evicted"});
      return true;
    }
    turned_away.inc({"refused"});
    const std::string busy = error_answer(
        503, istag, "too many connections (" + std::to_string(opts.max_connections) + ")", true);
    boost::system::error_code ignored;
    sock.non_blocking(true, ignored);
    sock.write_some(asio::buffer(busy), ignored); // a new socket's buffer takes it at once
    sock.close(ignored);
    return false;
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    auto& s = *self;
    for (;;) {
      auto [ec, sock] = co_await s.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (s.stopping) {
        co_return;
      }
      if (ec) {
        if (ec == asio::error::operation_aborted) {
          co_return;
        }
        s.log->warn("accept: {}", ec.message()); // e.g. out of file descriptors: go on
        asio::steady_timer t(s.ex, 50ms);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (!s.make_room(sock)) {
        continue;
      }
      s.accepted.inc();
      boost::system::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored); // an answer in pieces goes out at once
      auto c = std::make_shared<Conn>(std::move(sock));
      c->id = ++s.next_id;
      boost::system::error_code pec;
      auto peer = c->stream.socket().remote_endpoint(pec);
      c->peer =
          pec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
      s.conns.insert(c.get());
      auto task = session(self, c);
      asio::co_spawn(s.ex, std::move(task), [self, id = c->id](std::exception_ptr ep) {
        if (ep) { // a bug: this connection is lost, and says so
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            self->log->error("connection {}: {}", id, e.what());
          }
        }
      });
    }
  }

  static asio::awaitable<bool> send(Conn& c, std::string_view data,
                                    std::chrono::milliseconds timeout) {
    c.stream.expires_after(timeout);
    auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer(data),
                                              asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }

  static asio::awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c) {
    auto& s = *self;
    struct Forget {
      Impl& s;
      Conn& c;
      ~Forget() { s.forget(c); }
    } forget{s, *c};
    std::string in; // bytes received and not yet read as a request
    for (;;) {
      if (in.empty()) {
        if (s.stopping) {
          break;
        }
        // Waiting for a request: a small buffer, and the connection may make room for another.
        s.mark_idle(*c);
        in.resize(k_idle_read_size);
        c->stream.expires_after(s.opts.idle_timeout);
        auto [ec, n] = co_await c->stream.async_read_some(asio::buffer(in),
                                                          asio::as_tuple(asio::use_awaitable));
        in.resize(n);
        s.mark_busy(*c);
        if (ec || c->evicted) {
          break; // closed by the client, idle too long, evicted, or stopping
        }
      }
      auto handle = handle_request(self, c, in);
      const bool keep = co_await std::move(handle);
      if (!keep || s.stopping) {
        break;
      }
      if (in.empty()) {
        in.shrink_to_fit(); // an idle connection holds little
      }
    }
    boost::system::error_code ignored;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    c->stream.socket().close(ignored);
  }

  // After an error answer: our side is shut, and what the client still sends is read and
  // dropped for a moment, so that closing with unread bytes does not reset the connection
  // before the client has read the answer (a lingering close, as HTTP servers do).
  asio::awaitable<void> linger(Conn& c) {
    boost::system::error_code ignored;
    c.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::string sink(k_idle_read_size, '\0');
    std::size_t dropped = 0;
    while (dropped < k_linger_bytes) {
      c.stream.expires_after(k_linger_time);
      auto [ec, n] = co_await c.stream.async_read_some(asio::buffer(sink),
                                                       asio::as_tuple(asio::use_awaitable));
      if (ec) {
        break;
      }
      dropped += n;
    }
  }

  // What a request's body became.
  struct Body {
    std::shared_ptr<TempFile> spool; // null when not kept
    std::uint64_t kept = 0;
    std::uint64_t seen = 0;
    std::uint64_t sent = 0; // its first bytes sent before the verdict (k_trickle_every)
    bool over = false;      // over --body-limit: the rest was read and dropped
    std::string error;      // the spool could not be written
  };

  void keep_body(Body& b, std::string_view bytes) {
    b.seen += bytes.size();
    if (!b.spool) {
      return;
    }
    if (b.kept + bytes.size() > opts.body_limit) {
      b.over = true;
      b.spool.reset(); // its disk space back now; the rest is only counted
      return;
    }
    if (auto w = b.spool->write(bytes); !w) {
      b.error = "cannot spool the body: " + w.error().message;
      b.spool.reset();
      return;
    }
    b.kept += bytes.size();
  }

  // After an early head: the body's next byte(s), as its share of what came, if due.
  asio::awaitable<bool> trickle(Conn& c, Body& body) {
    const std::uint64_t due =
        std::min(body.kept - 1, 1 + (body.kept - k_commit_after) / k_trickle_every);
    if (body.sent >= due) {
      co_return true;
    }
    std::string data(static_cast<std::size_t>(due - body.sent), '\0');
    if (::pread(body.spool->fd(), data.data(), data.size(), static_cast<off_t>(body.sent)) !=
        static_cast<ssize_t>(data.size())) {
      co_return true; // nothing sent: the echo reads it again, or says why
    }
    std::string out;
    icap::write_chunk(out, data);
    auto sent = send(c, out, opts.write_timeout);
    if (!co_await std::move(sent)) {
      co_return false;
    }
    body.sent = due;
    co_return true;
  }

  // Reads one request from `in` and the connection, answers it; true if the connection stays.
  static asio::awaitable<bool> handle_request(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c,
                                              std::string& in) {
    auto& s = *self;
    const auto started = Clock::now();
    icap::RequestReader reader(s.limits);
    std::string bytes; // one feed's body bytes
    Body body;
    bool continued = false;
    bool at_preview = false; // answered at the preview's end, before any 100 Continue
    bool committed = false;  // the head of an unmodified answer went out (k_commit_after)
    std::vector<std::string> engines;

    // `why` by value: a coroutine keeps its reference parameters, and the callers pass
    // members of temporaries (ReadResult::error() returns a copy).
    auto fail = [&](int status, std::string why) -> asio::awaitable<bool> {
      s.log->warn("connection {} from {}: {} {}: {}", c->id, c->peer, status, reason_phrase(status),
                  why);
      s.requests.inc({method_label(reader), std::to_string(status)});
      const std::string out = error_answer(status, s.istag, why, true);
      auto sent = send(*c, out, s.opts.write_timeout);
      if (co_await std::move(sent)) {
        auto linger = s.linger(*c);
        co_await std::move(linger);
      }
      co_return false; // what follows on the connection cannot be framed
    };

    for (bool done = false; !done;) {
      bytes.clear();
      auto p = reader.feed(in, bytes);
      if (!p) {
        auto failed = fail(p.error().status, p.error().message);
        co_return co_await std::move(failed);
      }
      in.erase(0, p->used);
      if (!bytes.empty()) {
        s.keep_body(body, bytes);
        const icap::Request& r = reader.request();
        if (!committed && !r.allow_204 && (continued || !r.preview) && body.spool &&
            body.kept >= k_commit_after && !reader.complete()) {
          Verdict clean;
          clean.kind = Verdict::Kind::clean;
          Policy early;
          early.close = !r.keep_alive || s.stopping;
          early.istag = s.istag;
          const std::string head = answer(r, clean, early).head;
          auto sent = send(*c, head, s.opts.write_timeout);
          if (!co_await std::move(sent)) {
            co_return false;
          }
          committed = true;
        }
        if (committed && body.spool && !reader.complete()) {
          auto nudge = s.trickle(*c, body);
          if (!co_await std::move(nudge)) {
            co_return false;
          }
        }
      }
      switch (p->event) {
      case icap::RequestReader::Event::head: {
        const icap::Request& r = reader.request();
        auto chosen = s.route(r.url.service);
        if (!chosen) {
          std::string names = "avscan";
          for (const auto& e : s.backend->engines()) {
            names += ", " + e.name;
          }
          const std::string why =
              "no service '" + header_value(r.url.service, 100) + "' here (" + names + ")";
          auto failed = fail(404, why);
          co_return co_await std::move(failed);
        }
        engines = std::move(*chosen);
        if (r.has_body() && !r.is_options()) {
          auto f = TempFile::create(s.opts.temp_dir, "icap-body-");
          if (f) {
            body.spool = std::make_shared<TempFile>(std::move(*f));
          } else {
            body.error = "cannot spool the body: " + f.error().message;
          }
        }
        break;
      }
      case icap::RequestReader::Event::preview_end: {
        // A body its HTTP head says is over the limit is answered now: the client keeps it.
        if (auto n = content_length(reader.request()); n && *n > s.opts.body_limit) {
          body.over = true;
          body.spool.reset();
          at_preview = true;
          done = true;
          break;
        }
        const std::string go_on = continue_answer();
        auto sent = send(*c, go_on, s.opts.write_timeout);
        if (!co_await std::move(sent)) {
          co_return false;
        }
        reader.continue_after_preview();
        continued = true;
        break;
      }
      case icap::RequestReader::Event::complete:
        done = true;
        break;
      case icap::RequestReader::Event::more: {
        // Every read bounded: the head once begun, and each read of the body (progress).
        const std::size_t old = in.size();
        in.resize(old + k_read_size);
        if (reader.has_head()) {
          c->stream.expires_after(s.opts.read_timeout); // the body's progress
        } else {
          c->stream.expires_at(started + s.opts.read_timeout); // the head as a whole
        }
        auto [ec, n] = co_await c->stream.async_read_some(
            asio::buffer(in.data() + old, k_read_size), asio::as_tuple(asio::use_awaitable));
        in.resize(old + n);
        if (ec == asio::error::eof) {
          if (auto e = reader.at_eof()) { // the client may still read: say why
            auto failed = fail(e->status, e->message);
            co_return co_await std::move(failed);
          }
          co_return false;
        }
        if (ec) {
          if (reader.started()) {
            s.log->warn("connection {} from {}: {} ({}): closed", c->id, c->peer, ec.message(),
                        reader.where());
          }
          co_return false; // a timeout closed the socket: nothing can be answered
        }
        break;
      }
      }
    }

    const icap::Request& r = reader.request();
    const bool keep = r.keep_alive && !s.stopping && !c->evicted;
    if (r.is_options()) {
      ServiceInfo info{s.istag, s.service_text(r.url.service), s.opts.max_connections};
      s.requests.inc({"OPTIONS", "200"});
      const std::string out = options_answer(info, !keep);
      auto send_options = send(*c, out, s.opts.write_timeout);
      const bool sent = co_await std::move(send_options);
      s.request_seconds.observe({"OPTIONS"}, seconds_since(started));
      co_return sent&& keep;
    }

    Verdict verdict;
    if (!r.has_body()) {
      verdict.kind = Verdict::Kind::clean; // an HTTP message without a body: nothing to scan
    } else if (body.over) {
      verdict.errors.push_back("the body is over the " + format_size(s.opts.body_limit) +
                               " limit (--body-limit): not scanned");
    } else if (!body.error.empty()) {
      verdict.errors.push_back(body.error);
    } else {
      auto scan = s.scan(self, r, body, engines);
      verdict = co_await std::move(scan);
    }
    if (committed) {
      auto finish = s.finish_committed(c, r, body, verdict, started);
      co_return co_await std::move(finish);
    }
    Policy policy;
    policy.on_unknown = s.opts.on_unknown;
    policy.may_204 = r.allow_204 || (r.preview.has_value() && !continued);
    policy.body_kept = body.spool != nullptr;
    policy.close = !keep;
    policy.istag = s.istag;
    Answer a = answer(r, verdict, policy);

    bool sent = false;
    std::string out = std::move(a.head);
    if (a.body == Answer::Body::page) {
      icap::write_chunk(out, a.page);
      icap::write_last_chunk(out);
      auto send_page = send(*c, out, s.opts.write_timeout);
      sent = co_await std::move(send_page);
    } else if (a.body == Answer::Body::echo) {
      auto echo = s.echo(c, body, std::move(out));
      sent = co_await std::move(echo);
    } else {
      auto send_head = send(*c, out, s.opts.write_timeout);
      sent = co_await std::move(send_head);
    }
    s.requests.inc({r.line.method, std::to_string(a.status)});
    s.answers.inc({a.outcome});
    const double secs = seconds_since(started);
    s.request_seconds.observe({r.line.method}, secs);
    std::string names;
    for (const auto& t : verdict.threats) {
      names += (names.empty() ? " " : ", ") + t.name + " (" + t.engine + ")";
    }
    s.log->info("{} {} /{} ({} bytes{}): {}{}{} -> {} in {:.3f} s", c->peer, r.line.method,
                header_value(r.url.service, 100), body.seen,
                at_preview ? ", answered at preview" : "", a.outcome, names,
                a.scan_error.empty() ? "" : " (" + a.scan_error + ")", a.status, secs);
    co_return sent&& keep;
  }

  // After an early head (k_commit_after): the body follows if the verdict lets it through;
  // otherwise the connection ends there (with at most the bytes trickle() sent).
  asio::awaitable<bool> finish_committed(std::shared_ptr<Conn> c, const icap::Request& r,
                                         const Body& body, const Verdict& verdict,
                                         Clock::time_point started) {
    const bool pass =
        verdict.kind == Verdict::Kind::clean ||
        (verdict.kind == Verdict::Kind::unknown && opts.on_unknown == OnUnknown::allow);
    std::string outcome = verdict.kind == Verdict::Kind::clean      ? "clean"
                          : verdict.kind == Verdict::Kind::infected ? "infected"
                          : pass                                    ? "unknown_allowed"
                                                                    : "unknown_blocked";
    bool sent = false;
    if (pass && body.spool) {
      auto rest = echo(c, body, std::string());
      sent = co_await std::move(rest);
    } else if (pass) {
      outcome = "too_large"; // its spool was dropped: nothing to send
    }
    requests.inc({r.line.method, "200"});
    answers.inc({outcome});
    const double secs = seconds_since(started);
    request_seconds.observe({r.line.method}, secs);
    std::string why;
    for (const auto& t : verdict.threats) {
      why += (why.empty() ? " " : ", ") + t.name + " (" + t.engine + ")";
    }
    for (const auto& e : verdict.errors) {
      why += (why.empty() ? " (" : "; ") + e;
    }
    if (!verdict.errors.empty()) {
      why += ")";
    }
    if (sent) {
      log->info("{} {} /{} ({} bytes, head sent early): {}{} -> 200 in {:.3f} s", c->peer,
                r.line.method, header_value(r.url.service, 100), body.seen, outcome, why, secs);
      co_return r.keep_alive && !stopping && !c->evicted;
    }
    log->warn("{} {} /{} ({} bytes, head sent early): {}{}: connection closed after the head "
              "and {} bytes of the body",
              c->peer, r.line.method, header_value(r.url.service, 100), body.seen, outcome, why,
              body.sent);
    co_return false;
  }

  // The body unmodified, from its spool file, after `head`.
  asio::awaitable<bool> echo(std::shared_ptr<Conn> c, const Body& body, std::string out) {
    std::string data(k_echo_chunk, '\0');
    std::uint64_t offset = body.sent; // what went out before the verdict, if anything
    while (offset < body.kept) {
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>(k_echo_chunk, body.kept - offset));
      const ssize_t n = ::pread(body.spool->fd(), data.data(), want, static_cast<off_t>(offset));
      if (n <= 0) {
        log->error("connection {}: cannot read back the spooled body: {}", c->id,
                   n < 0 ? std::strerror(errno) : "it is shorter than written");
        co_return false; // cut short: the client sees a broken answer, not a wrong one
      }
      offset += static_cast<std::uint64_t>(n);
      icap::write_chunk(out, std::string_view(data.data(), static_cast<std::size_t>(n)));
      if (offset == body.kept) {
        break;
      }
      auto sent = send(*c, out, opts.write_timeout);
      if (!co_await std::move(sent)) {
        co_return false;
      }
      out.clear();
    }
    icap::write_last_chunk(out);
    auto sent = send(*c, out, opts.write_timeout);
    co_return co_await std::move(sent);
  }

  // Scans the spooled body with the engines of its service (a scan slot held meanwhile).
  asio::awaitable<Verdict> scan(std::shared_ptr<Impl> self, const icap::Request& r,
                                const Body& body, const std::vector<std::string>& engines) {
    (void)self; // keeps this Impl alive while the scan runs
    Verdict v;
    v.kind = Verdict::Kind::unknown;
    const bool slot = co_await scan_slots.acquire(Clock::now() + opts.slot_timeout);
    if (!slot) {
      v.errors.push_back(
          stopping ? "the server stopped before the scan"
                   : "no scan slot free within " + std::to_string(opts.slot_timeout.count()) +
                         " s (--concurrency " + std::to_string(opts.concurrency) + ")");
      co_return v;
    }
    ++scanning;
    backend::Job job;
    job.input = input_name(r);
    job.engines = engines;
    if (backend->scans_here()) {
      job.fetched = backend::FetchedArtifact{body.spool->path(), body.kept, {}, {}, body.spool};
    } else if (auto b = remote_bounty(body)) {
      job.bounty = std::move(*b);
    } else {
      job.error = b.error().message;
    }
    const auto started = Clock::now();
    auto run = backend->run_one(std::move(job));
    backend::JobResult result = co_await std::move(run);
    scan_slots.release();
    --scanning;
    const double secs = seconds_since(started);
    for (const auto& a : result.analyses) {
      scans.inc({a.engine, std::string(model::to_string(a.analysis.result))});
      latency.observe({a.engine}, secs);
    }
    co_return combine(result.analyses);
  }

  // For a backend that scans elsewhere (Celery): the bytes travel in the bounty, as a data: URI
  // (in memory for the time it is sent: --body-limit bounds it).
  Result<model::Bounty> remote_bounty(const Body& body) {
    std::string bytes(static_cast<std::size_t>(body.kept), '\0');
    if (body.kept > 0 && ::pread(body.spool->fd(), bytes.data(), bytes.size(), 0) !=
                             static_cast<ssize_t>(bytes.size())) {
      return make_error("cannot read back the spooled body");
    }
    model::Bounty b;
    b.sha256 = sha256_hex(bytes);
    b.id = model::local_bounty_id(*b.sha256);
    b.artifact_uri = "data:application/octet-stream;base64," + base64_encode(bytes);
    b.expiration = std::chrono::system_clock::now() + k_remote_expiry;
    return b;
  }
};

Server::Server(asio::any_io_executor ex, ServerOptions opts, backend::Backend& backend)
    : m_impl(std::make_shared<Impl>(std::move(ex), std::move(opts), backend)) {}

Server::~Server() {
  if (m_impl->metrics_listener) {
    m_impl->metrics_listener->stop();
  }
}

Result<std::uint16_t> Server::listen() {
  auto& s = *m_impl;
  s.refresh_istag();
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(s.opts.bind, ec);
  if (ec) {
    return make_error("--bind: not an IP address: '" + s.opts.bind + "'");
  }
  tcp::endpoint ep(addr, s.opts.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) {
    s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    s.acceptor.bind(ep, ec);
  }
  if (!ec) {
    s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return make_error("cannot listen on " + s.opts.bind + ":" + std::to_string(s.opts.port) + ": " +
                      ec.message());
  }
  if (s.opts.metrics_port) {
    std::weak_ptr<Impl> weak = m_impl;
    s.metrics_listener = std::make_unique<http::MetricsListener>(s.ex, [weak] {
      auto self = weak.lock();
      return self ? self->render_metrics() : std::string();
    });
    auto port = s.metrics_listener->listen(s.opts.bind, *s.opts.metrics_port);
    if (!port) {
      return make_error("--metrics-port: " + port.error().message);
    }
    s.opts.metrics_port = *port;
  }
  return s.acceptor.local_endpoint().port();
}

std::optional<std::uint16_t> Server::metrics_port() const {
  return m_impl->opts.metrics_port;
}

asio::awaitable<void> Server::run() {
  auto self = m_impl;
  auto& s = *self;
  auto accept = Impl::accept_loop(self);
  asio::co_spawn(s.ex, std::move(accept), asio::detached);
  while (!s.stopping) {
    co_await s.wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  boost::system::error_code ignored;
  s.acceptor.close(ignored); // stop() may have come before listen()
  // The drain: requests in flight are answered; at its end, what is left is closed.
  const auto deadline = Clock::now() + s.opts.drain_timeout;
  bool forced = false;
  while (!s.conns.empty()) {
    if (!forced && Clock::now() >= deadline) {
      forced = true;
      s.log->warn("drain timeout: closing {} connections with requests in flight", s.conns.size());
      for (Conn* c : s.conns) {
        s.close(*c);
      }
      s.scan_slots.close();
    }
    s.wake.expires_at(forced ? Clock::time_point::max() : deadline);
    co_await s.wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (s.metrics_listener) {
    s.metrics_listener->stop();
  }
}

void Server::stop() {
  auto& s = *m_impl;
  if (s.stopping) {
    return;
  }
  s.stopping = true;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  const std::size_t busy = s.conns.size() - s.idle.size();
  while (!s.idle.empty()) { // idle connections: closed now
    Conn& c = *s.idle.front();
    s.mark_busy(c);
    s.close(c);
  }
  if (busy > 0) {
    s.log->warn("draining: {} connections with a request in flight; at most {} s more", busy,
                s.opts.drain_timeout.count());
  }
  s.wake.cancel();
}

void Server::definitions_changed() {
  ++m_impl->generation;
  m_impl->refresh_istag();
}

std::string Server::istag() const {
  return m_impl->istag;
}

} // namespace pss::icap_server

#include "http/webhook.hpp"

#include "artifact/spool.hpp"
#include "artifact/uri.hpp"
#include "http/delivery.hpp"
#include "http/engine_metrics.hpp"
#include "http/listen.hpp"
#include "http/metrics.hpp"
#include "http/slots.hpp"
#include "http/webhook_request.hpp"
#include "model/bounty.hpp"
#include "util/hmac.hpp"
#include "util/log.hpp"
#include "util/memory.hpp"
#include "util/uuid.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <map>

namespace pss::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto k_write_timeout = 10s;
// A bounty's stages wait until its expiration; years away is as good as a month.
constexpr std::chrono::milliseconds k_far = std::chrono::hours(24 * 30);

struct Accepted {
  std::size_t engine = 0;
  model::Bounty bounty;
  std::string delivery; // X-POLYSWARM-DELIVERY, for logs and our own answer
  Clock::time_point received;
  // A data: artifact written to a file as its request arrived (the bounty's artifact_uri is
  // then a short stand-in).
  std::shared_ptr<const TempFile> spooled;
  std::uint64_t spooled_size = 0;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

asio::awaitable<Result<artifact::Artifact>> fetch_task(std::string uri,
                                                       artifact::FetchOptions opts) {
  co_return artifact::fetch(uri, opts);
}

} // namespace

struct Webhook::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor ex;
  WebhookOptions opts;
  RequestRules rules{opts.secret, opts.engines, opts.body_limit, opts.header_limit};
  backend::Backend* backend;
  std::shared_ptr<spdlog::logger> log = log::get("webhook");
  tcp::acceptor acceptor;
  Metrics metrics;
  Counter& requests =
      metrics.counter("pss_http_requests_total", "HTTP requests by status code", {"code"});
  Counter& bounties = metrics.counter(
      "pss_bounties_total",
      "Bounties by outcome: accepted, answered (an analysis was made), rejected (bad "
      "signature, invalid, unknown engine), busy (too many waiting), duplicate (an id "
      "accepted before, not scanned again), dropped (not scanned when a stop's drain ended)",
      {"outcome"});
  Counter& scans =
      metrics.counter("pss_scans_total", "Scans by engine and verdict", {"engine", "verdict"});
  Histogram& latency =
      metrics.histogram("pss_scan_latency_seconds",
                        "Time an engine took to answer one bounty (the scan alone)", {"engine"});
  Histogram& wait_latency = metrics.histogram(
      "pss_bounty_wait_seconds",
      "Time from a bounty's arrival to its scan's start (queue and download)", {"engine"});
  Histogram& delivery_latency = metrics.histogram(
      "pss_delivery_latency_seconds",
      "Time from an analysis to the end of its delivery (every attempt), by result", {"result"});
  Gauge& queue_depth =
      metrics.gauge("pss_queue_depth", "Bounties accepted, not yet scanning (incl. downloading)");
  Gauge& fetches_in_flight =
      metrics.gauge("pss_fetches_in_flight", "Artifacts being downloaded by the webhook");
  Gauge& in_flight = metrics.gauge("pss_scans_in_flight", "Bounties being scanned");
  Gauge& deliveries_in_flight =
      metrics.gauge("pss_deliveries_in_flight", "Answers being delivered (or waiting to retry)");
  Counter& deliveries =
      metrics.counter("pss_deliveries_total",
                      "Answers to response_url by result: ok, refused (a permanent failure, "
                      "tried once), expired (transient failures until the bounty expired), "
                      "abandoned (the webhook stopped), none (the bounty had no response_url)",
                      {"result"});
  EngineMetrics engine_metrics{metrics};

  // The stages' bounds: a bounty holds a fetch slot while its artifact downloads (and until
  // its scan starts: the file is on disk), a scan slot while an engine scans it; deliveries
  // are bounded by the Deliverer.
  Slots fetch_slots{ex, opts.fetch_concurrency};
  Slots scan_slots{ex, opts.workers};
  Deliverer deliverer{DelivererOptions{opts.delivery_concurrency, opts.allow_private_networks}};
  asio::thread_pool fetch_pool{std::max<std::size_t>(1, opts.fetch_concurrency)};
  std::shared_ptr<std::atomic<bool>> cancel_fetches = std::make_shared<std::atomic<bool>>(false);

  std::size_t active = 0;  // bounties accepted and not finished (delivered or given up)
  std::size_t waiting = 0; // accepted, not yet scanning: the queue the limit applies to
  std::size_t fetching = 0;
  std::size_t scanning = 0;
  std::size_t delivering = 0;
  bool stopping = false;
  bool drain_over = false;
  asio::steady_timer idle_event{ex, Clock::time_point::max()}; // run() waits on it
  asio::steady_timer drain_timer{ex, Clock::time_point::max()};
  std::vector<std::weak_ptr<beast::tcp_stream>> streams; // open connections, closed by stop()

  // Bounty ids accepted, per engine, until their expiration: a repeat (a sender's retry) is
  // answered 202 and not scanned again.
  using IdKey = std::pair<std::size_t, std::uint64_t>;
  std::map<IdKey, std::chrono::system_clock::time_point> seen;
  std::multimap<std::chrono::system_clock::time_point, IdKey> seen_by_expiry;

  Impl(asio::any_io_executor e, WebhookOptions o, backend::Backend& b)
      : ex(std::move(e)), opts(std::move(o)), backend(&b), acceptor(ex) {}

  void update_gauges() {
    queue_depth.set({}, static_cast<double>(waiting));
    fetches_in_flight.set({}, static_cast<double>(fetching));
    in_flight.set({}, static_cast<double>(scanning));
    deliveries_in_flight.set({}, static_cast<double>(delivering));
  }

  std::string render_metrics() {
    engine_metrics.update(backend->states());
    return metrics.render();
  }

  void forget_expired_ids() {
    auto now = std::chrono::system_clock::now();
    while (!seen_by_expiry.empty() && seen_by_expiry.begin()->first <= now) {
      forget_first_id();
    }
  }

  void forget_first_id() {
    auto it = seen_by_expiry.begin();
    if (auto s = seen.find(it->second); s != seen.end() && s->second == it->first) {
      seen.erase(s);
    }
    seen_by_expiry.erase(it);
  }

  // False when this engine already accepted this bounty id and it has not expired.
  bool remember(std::size_t engine, const model::Bounty& b) {
    IdKey key{engine, b.id};
    auto expiry = *b.expiration;
    if (auto it = seen.find(key);
        it != seen.end() && it->second > std::chrono::system_clock::now()) {
      return false;
    }
    seen[key] = expiry;
    seen_by_expiry.emplace(expiry, key);
    while (seen.size() > opts.remembered_ids && !seen_by_expiry.empty()) {
      forget_first_id(); // the soonest to expire: bounded memory against a flood of ids
    }
    return true;
  }

  // Answers one request, as classify_request() decides; starts an accepted bounty.
  Response handle(const Request& req) {
    forget_expired_ids();
    std::shared_ptr<const TempFile> spooled;
    std::uint64_t spooled_size = 0;
    BodyFilter filter;
    bool room = waiting < opts.queue_limit && !stopping;
    if (opts.fetch && room) { // a bounty turned away (503) is not decoded first
      // A large data: artifact goes to a file now, so that neither the parsed bounty nor
      // anything queued holds its bytes.
      filter = [&](std::string_view body) -> std::optional<std::string> {
        auto r = artifact::spool_data_artifact(body, opts.fetch->temp_dir, opts.fetch->max_size);
        if (!r || !*r) {
          return std::nullopt; // parsed as it is; the backend fetches it (and says why not)
        }
        spooled = std::make_shared<const TempFile>(std::move((*r)->file));
        spooled_size = (*r)->size;
        return std::move((*r)->body);
      };
    }
    Decision d = classify_request(req, rules, room, filter);
    if (!d.warning.empty()) {
      log->warn("{}", d.warning);
    }
    switch (d.outcome) {
    case BountyOutcome::none:
      break;
    case BountyOutcome::rejected:
      bounties.inc({"rejected"});
      break;
    case BountyOutcome::busy:
      bounties.inc({"busy"});
      break;
    case BountyOutcome::accepted: {
      Accepted a;
      a.engine = d.engine;
      a.bounty = std::move(*d.bounty);
      a.delivery = d.delivery;
      a.received = Clock::now();
      a.spooled = std::move(spooled);
      a.spooled_size = spooled_size;
      if (!a.bounty.expiration) { // answered within 90 s, as PolySwarm expects
        a.bounty.expiration = std::chrono::system_clock::now() + opts.default_expiry;
      }
      if (!remember(a.engine, a.bounty)) {
        bounties.inc({"duplicate"});
        log->info("bounty {}: a repeat for {} (delivery {}): accepted before, not scanned again",
                  a.bounty.id, opts.engines[a.engine], a.delivery.empty() ? "-" : a.delivery);
        break;
      }
      log->info("bounty {}: accepted for {} (delivery {})", a.bounty.id, opts.engines[a.engine],
                a.delivery.empty() ? "-" : a.delivery);
      bounties.inc({"accepted"});
      ++active;
      ++waiting;
      update_gauges();
      auto task = flow(shared_from_this(), std::move(a));
      asio::co_spawn(ex, std::move(task), [self = shared_from_this()](std::exception_ptr ep) {
        if (ep) { // a bug: the bounty is lost, and says so
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            self->log->error("bounty pipeline: {}", e.what());
          }
        }
      });
      break;
    }
    }
    if (d.kind == Decision::Kind::metrics) {
      d.body = render_metrics();
    }
    return make_response(d, req.version());
  }

  static asio::awaitable<void> session(std::shared_ptr<Impl> self, tcp::socket sock) {
    auto& s = *self;
    auto stream_ptr = std::make_shared<beast::tcp_stream>(std::move(sock));
    auto& stream = *stream_ptr;
    std::erase_if(s.streams, [](const auto& w) { return w.expired(); });
    s.streams.push_back(stream_ptr);
    beast::flat_buffer buf;
    for (bool first = true;; first = false) {
      RequestParser parser;
      apply_limits(parser, s.rules);
      stream.expires_after(first ? s.opts.read_timeout : s.opts.idle_timeout);
      auto [ec, n] =
          co_await bh::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        ec = check_framing(parser.get());
      }
      std::optional<Response> res;
      bool keep = false;
      if (ec) {
        Decision d = classify_read_error(ec, s.rules, parser.get(),
                                         {static_cast<const char*>(buf.data().data()), buf.size()});
        if (d.kind == Decision::Kind::close) {
          break; // no request began, timed out, or the socket failed
        }
        res = make_response(d, 11);
      } else {
        const Request& req = parser.get();
        res = s.handle(req);
        keep = req.keep_alive() && !s.stopping;
      }
      res->keep_alive(keep);
      s.requests.inc({std::to_string(res->result_int())});
      stream.expires_after(k_write_timeout);
      auto [wec, wn] = co_await bh::async_write(stream, *res, asio::as_tuple(asio::use_awaitable));
      if (wec || !keep) {
        break;
      }
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    auto& s = *self;
    for (;;) {
      auto [ec, sock] = co_await s.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (s.stopping || ec == asio::error::operation_aborted) {
          co_return;
        }
        s.log->warn("accept: {}", ec.message()); // e.g. out of file descriptors: go on
        asio::steady_timer t(s.ex, 50ms);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      auto task = session(self, std::move(sock));
      asio::co_spawn(s.ex, std::move(task), asio::detached);
    }
  }

  // Ends a bounty's life in the counts, whichever way it ends.
  struct Finish {
    Impl& s;
    bool waiting = true;
    ~Finish() {
      if (waiting) {
        --s.waiting;
      }
      --s.active;
      s.update_gauges();
      if (s.active == 0) {
        s.idle_event.cancel();
        s.trim_memory();
      }
    }
    void scanning() {
      waiting = false;
      --s.waiting;
    }
  };

  void give_up(const Accepted& a, std::string_view stage) {
    bounties.inc({"dropped"});
    log->error("bounty {}: NOT answered: the drain ended (--drain-timeout) before its {}",
               a.bounty.id, stage);
  }

  // Downloads an http(s) artifact for `job`, bounded by the bounty's deadline and
  // --fetch-timeout; a failure becomes the job's error (answered `unknown`, not scanned).
  static asio::awaitable<void> fetch_artifact(std::shared_ptr<Impl> self, const Accepted& a,
                                              backend::Job& job, Clock::time_point deadline) {
    auto& s = *self;
    artifact::FetchOptions fo = *s.opts.fetch;
    fo.cancel = s.cancel_fetches;
    auto left = std::chrono::ceil<std::chrono::seconds>(deadline - Clock::now());
    fo.total_timeout = std::min(fo.total_timeout, left);
    fo.connect_timeout = std::min(fo.connect_timeout, fo.total_timeout);
    if (fo.total_timeout.count() <= 0) {
      job.error = "bounty expired at " + model::format_iso8601(*a.bounty.expiration) +
                  " before its artifact was fetched";
      co_return;
    }
    ++s.fetching;
    s.update_gauges();
    auto task = fetch_task(a.bounty.artifact_uri, std::move(fo));
    Result<artifact::Artifact> r =
        co_await asio::co_spawn(s.fetch_pool, std::move(task), asio::use_awaitable);
    --s.fetching;
    s.update_gauges();
    if (!r) {
      job.error = r.error().message;
      co_return;
    }
    backend::FetchedArtifact f{r->path, r->size, r->sha256, r->mimetype, nullptr};
    if (r->temp) {
      f.owner = std::make_shared<const TempFile>(std::move(*r->temp));
    }
    job.fetched = std::move(f);
  }

  // One bounty through its stages: download, scan, delivery.
  static asio::awaitable<void> flow(std::shared_ptr<Impl> self, Accepted a) {
    auto& s = *self;
    Finish finish{s};
    const std::string& engine = s.opts.engines[a.engine];
    auto deadline = backend::bounty_deadline(a.bounty, k_far);
    backend::Job job;
    job.input = a.bounty.artifact_uri;
    job.artifact_type = a.bounty.artifact_type;
    job.bounty = a.bounty;
    if (a.spooled) {
      job.fetched = backend::FetchedArtifact{a.spooled->path(), a.spooled_size, {}, {}, a.spooled};
    }
    job.engines = {engine}; // this route's engine only
    // A result cache that has the answer for these bytes: nothing to download or scan.
    std::optional<backend::JobResult> cached;
    if (job.bounty->sha256) {
      cached = co_await s.backend->answer_from_cache(job);
    }
    bool fetch_slot = false;
    if (!cached && !job.fetched && s.opts.fetch &&
        artifact::classify_input(a.bounty.artifact_uri) == artifact::InputKind::http_uri) {
      fetch_slot = co_await s.fetch_slots.acquire(deadline);
      if (fetch_slot) {
        co_await fetch_artifact(self, a, job, deadline);
      } else if (s.drain_over) {
        s.give_up(a, "download");
        co_return;
      } else {
        job.error = "bounty expired at " + model::format_iso8601(*a.bounty.expiration) +
                    " while waiting for a download slot";
      }
    }
    // Past its deadline, a bounty still goes to the backend, without a slot: the backend
    // answers an expired bounty `unknown` at once.
    bool scan_slot = co_await s.scan_slots.acquire(deadline);
    if (fetch_slot) {
      s.fetch_slots.release();
    }
    if (!scan_slot && s.drain_over) {
      s.give_up(a, "scan");
      co_return;
    }
    finish.scanning();
    ++s.scanning;
    s.update_gauges();
    s.wait_latency.observe({engine}, seconds_since(a.received));
    auto started = Clock::now();
    backend::JobResult r;
    if (cached) {
      r = std::move(*cached);
    } else {
      auto run = s.backend->run_one(std::move(job));
      r = co_await std::move(run);
    }
    a.spooled.reset(); // scanned: its file is not kept while the answer is delivered
    if (scan_slot) {
      s.scan_slots.release();
    }
    --s.scanning;
    s.update_gauges();
    model::Analysis analysis = r.analyses.empty() ? model::Analysis::unknown_because("no analysis")
                                                  : r.analyses.front().analysis;
    double scan_seconds = seconds_since(started);
    s.latency.observe({engine}, scan_seconds);
    s.scans.inc({engine, std::string(model::to_string(analysis.result))});
    s.bounties.inc({"answered"});
    s.log->info("bounty {}: {} {}{} in {:.3f} s (after {:.3f} s waiting)", a.bounty.id, engine,
                model::to_string(analysis.result),
                analysis.result_name ? " " + *analysis.result_name
                                     : (analysis.error ? " (" + *analysis.error + ")" : ""),
                scan_seconds, std::chrono::duration<double>(started - a.received).count());
    co_await deliver_answer(self, a, analysis);
  }

  static asio::awaitable<void> deliver_answer(std::shared_ptr<Impl> self, const Accepted& a,
                                              const model::Analysis& analysis) {
    auto& s = *self;
    if (!a.bounty.response_url || a.bounty.response_url->empty()) {
      s.deliveries.inc({"none"});
      co_return;
    }
    Delivery d;
    d.url = *a.bounty.response_url;
    d.body = model::to_polyswarm(analysis, a.bounty.phase).dump();
    d.give_up_at = *a.bounty.expiration;
    d.headers["X-POLYSWARM-EVENT"] =
        a.bounty.phase == model::Phase::arbitration ? "vote" : "assertion";
    d.headers["X-POLYSWARM-DELIVERY"] = uuid4();
    d.headers["X-POLYSWARM-BOUNTY"] = std::to_string(a.bounty.id);
    if (!s.opts.secret.empty()) {
      d.headers["X-POLYSWARM-SIGNATURE"] = hmac_sha256_hex(s.opts.secret, d.body);
    }
    ++s.delivering;
    s.update_gauges();
    auto started = Clock::now();
    auto send = s.deliverer.deliver(d);
    DeliveryOutcome out = co_await std::move(send);
    --s.delivering;
    s.update_gauges();
    std::string result = out.result == DeliveryResult::delivered
                             ? std::string("ok")
                             : std::string(to_string(out.result));
    s.delivery_latency.observe({result}, seconds_since(started));
    s.deliveries.inc({result});
    switch (out.result) {
    case DeliveryResult::delivered:
      s.log->info("bounty {}: answer delivered to {} (attempt {}, HTTP {})", a.bounty.id, d.url,
                  out.attempts, out.last_status);
      break;
    case DeliveryResult::refused:
      s.log->error("bounty {}: answer NOT delivered to {}: {} (a permanent failure: not retried)",
                   a.bounty.id, d.url, out.last_error);
      break;
    case DeliveryResult::expired:
      s.log->error("bounty {}: answer NOT delivered to {} after {} attempts before the "
                   "expiration: {}",
                   a.bounty.id, d.url, out.attempts, out.last_error);
      break;
    case DeliveryResult::abandoned:
      s.log->error("bounty {}: answer NOT delivered to {}: the webhook stopped (--drain-timeout) "
                   "after {} attempts{}",
                   a.bounty.id, d.url, out.attempts,
                   out.last_error.empty() ? "" : " (last: " + out.last_error + ")");
      break;
    }
  }

  // A burst drained: its pages back to the system, once the webhook has stayed idle for a
  // second (a trim costs ~1 ms; a steady trickle of bounties falls idle after each one).
  asio::steady_timer trim_timer{ex};
  bool trim_armed = false;
  void trim_memory() {
    if (trim_armed) {
      return;
    }
    trim_armed = true;
    trim_timer.expires_after(1s);
    trim_timer.async_wait([self = shared_from_this()](boost::system::error_code) {
      self->trim_armed = false;
      if (self->active == 0) {
        return_free_memory();
      }
    });
  }

  // The drain after stop() is over: nothing more starts, deliveries end now.
  void end_drain() {
    if (drain_over) {
      return;
    }
    drain_over = true;
    if (active > 0) {
      log->warn("drain timeout: giving up {} bounties not yet scanned and {} deliveries", waiting,
                delivering);
    }
    fetch_slots.close();
    scan_slots.close();
    cancel_fetches->store(true);
    deliverer.abort();
  }
};

Webhook::Webhook(asio::any_io_executor ex, WebhookOptions opts, backend::Backend& backend)
    : m_impl(std::make_shared<Impl>(std::move(ex), std::move(opts), backend)) {}

Webhook::~Webhook() {
  m_impl->fetch_pool.join();
}

Result<std::uint16_t> Webhook::listen() {
  auto& s = *m_impl;
  return listen_on(s.acceptor, s.opts.bind, s.opts.port);
}

asio::awaitable<void> Webhook::run() {
  auto self = m_impl;
  auto& s = *self;
  auto accept = Impl::accept_loop(self);
  asio::co_spawn(s.ex, std::move(accept), asio::detached);
  // Woken by stop() and whenever the last bounty in flight ends.
  while (!s.stopping || s.active > 0) {
    co_await s.idle_event.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  s.drain_timer.cancel();
  s.trim_timer.cancel();
  s.fetch_slots.close();
  s.scan_slots.close();
}

std::size_t Webhook::in_flight() const {
  return m_impl->active;
}

void Webhook::stop() {
  auto& s = *m_impl;
  if (s.stopping) {
    return;
  }
  s.stopping = true;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  for (auto& w : s.streams) { // idle keep-alive connections: closed now
    if (auto st = w.lock()) {
      st->socket().close(ignored);
    }
  }
  if (s.active > 0) {
    s.log->warn("draining: {} bounties in flight ({} not yet scanning, {} scanning, {} "
                "delivering); at most {} s more",
                s.active, s.waiting, s.scanning, s.delivering, s.opts.drain_timeout.count());
  }
  s.drain_timer.expires_after(s.opts.drain_timeout);
  s.drain_timer.async_wait([self = m_impl](boost::system::error_code ec) {
    if (!ec) {
      self->end_drain();
    }
  });
  s.idle_event.cancel();
}

} // namespace pss::http

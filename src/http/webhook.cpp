#include "http/webhook.hpp"

#include "http/delivery.hpp"
#include "http/metrics.hpp"
#include "http/webhook_request.hpp"
#include "model/bounty.hpp"
#include "util/hmac.hpp"
#include "util/log.hpp"
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
#include <deque>

namespace pss::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto k_write_timeout = 10s;

struct Accepted {
  std::size_t engine = 0;
  model::Bounty bounty;
  std::string delivery; // X-POLYSWARM-DELIVERY, for logs and our own answer
  Clock::time_point received;
};

} // namespace

struct Webhook::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor ex;
  WebhookOptions opts;
  RequestRules rules{opts.secret, opts.engines, opts.body_limit, opts.header_limit};
  Dispatch dispatch;
  EngineGauges gauges;
  std::shared_ptr<spdlog::logger> log = log::get("webhook");
  tcp::acceptor acceptor;
  asio::thread_pool delivery_pool{2};
  Metrics metrics;
  Counter& requests =
      metrics.counter("pss_http_requests_total", "HTTP requests by status code", {"code"});
  Counter& bounties = metrics.counter(
      "pss_bounties_total",
      "Bounties by outcome: accepted, answered (an analysis was made), rejected (bad "
      "signature, invalid, unknown engine), busy (queue full)",
      {"outcome"});
  Counter& scans =
      metrics.counter("pss_scans_total", "Scans by engine and verdict", {"engine", "verdict"});
  Histogram& latency = metrics.histogram(
      "pss_scan_latency_seconds", "Time from a bounty's arrival to its analysis", {"engine"});
  Gauge& queue_depth = metrics.gauge("pss_queue_depth", "Bounties accepted, not yet scanned");
  Gauge& in_flight = metrics.gauge("pss_scans_in_flight", "Bounties being scanned");
  Counter& deliveries = metrics.counter("pss_deliveries_total",
                                        "Answers to response_url by result: ok, failed, none "
                                        "(the bounty had no response_url)",
                                        {"result"});
  Gauge& engine_state =
      metrics.gauge("pss_engine_up", "1 for the engine's current state", {"engine", "state"});
  Gauge& engine_restarts =
      metrics.gauge("pss_engine_restarts", "Restarts of the engine's server", {"engine"});

  std::deque<Accepted> queue;
  std::size_t busy_workers = 0;
  std::vector<std::weak_ptr<asio::steady_timer>> waiters; // idle workers
  bool stopping = false;
  std::vector<std::weak_ptr<beast::tcp_stream>> streams; // open connections, closed by stop()

  Impl(asio::any_io_executor e, WebhookOptions o, Dispatch d, EngineGauges g)
      : ex(std::move(e)), opts(std::move(o)), dispatch(std::move(d)), gauges(std::move(g)),
        acceptor(ex) {}

  void wake() {
    for (auto& w : waiters) {
      if (auto t = w.lock()) {
        t->cancel();
      }
    }
    waiters.clear();
  }

  std::string render_metrics() {
    if (gauges) {
      for (const auto& g : gauges()) {
        for (const char* s : {"down", "starting", "ready", "stopping", "failed", "ok"}) {
          engine_state.set({g.engine, s}, g.state == s ? 1 : 0);
        }
        engine_restarts.set({g.engine}, g.restarts);
      }
    }
    return metrics.render();
  }

  // Answers one request, as classify_request() decides; queues an accepted bounty.
  Response handle(const Request& req) {
    Decision d = classify_request(req, rules, queue.size() < opts.queue_limit && !stopping);
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
      if (!a.bounty.expiration) { // answered within 90 s, as PolySwarm expects
        a.bounty.expiration = std::chrono::system_clock::now() + opts.default_expiry;
      }
      log->info("bounty {}: accepted for {} (delivery {})", a.bounty.id, opts.engines[a.engine],
                a.delivery.empty() ? "-" : a.delivery);
      queue.push_back(std::move(a));
      queue_depth.set({}, static_cast<double>(queue.size()));
      bounties.inc({"accepted"});
      wake();
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

  static asio::awaitable<void> worker(std::shared_ptr<Impl> self) {
    auto& s = *self;
    for (;;) {
      while (s.queue.empty()) {
        if (s.stopping) {
          co_return;
        }
        auto t = std::make_shared<asio::steady_timer>(s.ex, Clock::time_point::max());
        s.waiters.push_back(t);
        co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
      }
      Accepted a = std::move(s.queue.front());
      s.queue.pop_front();
      s.queue_depth.set({}, static_cast<double>(s.queue.size()));
      ++s.busy_workers;
      s.in_flight.set({}, static_cast<double>(s.busy_workers));
      auto task = answer(self, std::move(a));
      co_await std::move(task);
      --s.busy_workers;
      s.in_flight.set({}, static_cast<double>(s.busy_workers));
    }
  }

  static asio::awaitable<void> answer(std::shared_ptr<Impl> self, Accepted a) {
    auto& s = *self;
    const std::string& engine = s.opts.engines[a.engine];
    backend::Job job;
    job.input = a.bounty.artifact_uri;
    job.artifact_type = a.bounty.artifact_type;
    job.bounty = a.bounty;
    auto run = s.dispatch(a.engine, std::move(job));
    backend::JobResult r = co_await std::move(run);
    model::Analysis analysis = r.analyses.empty() ? model::Analysis::unknown_because("no analysis")
                                                  : r.analyses.front().analysis;
    auto seconds = std::chrono::duration<double>(Clock::now() - a.received).count();
    s.latency.observe({engine}, seconds);
    s.scans.inc({engine, std::string(model::to_string(analysis.result))});
    s.bounties.inc({"answered"});
    s.log->info("bounty {}: {} {}{} in {:.3f} s", a.bounty.id, engine,
                model::to_string(analysis.result),
                analysis.result_name ? " " + *analysis.result_name
                                     : (analysis.error ? " (" + *analysis.error + ")" : ""),
                seconds);
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
    auto send = deliver(s.delivery_pool.get_executor(), d);
    DeliveryOutcome out = co_await std::move(send);
    if (out.delivered) {
      s.deliveries.inc({"ok"});
      s.log->info("bounty {}: answer delivered to {} (attempt {}, HTTP {})", a.bounty.id, d.url,
                  out.attempts, out.last_status);
    } else {
      s.deliveries.inc({"failed"});
      s.log->error("bounty {}: answer NOT delivered to {} after {} attempts before the "
                   "expiration: {}",
                   a.bounty.id, d.url, out.attempts, out.last_error);
    }
  }
};

Webhook::Webhook(asio::any_io_executor ex, WebhookOptions opts, Dispatch dispatch,
                 EngineGauges gauges)
    : m_impl(std::make_shared<Impl>(std::move(ex), std::move(opts), std::move(dispatch),
                                    std::move(gauges))) {}

Webhook::~Webhook() {
  m_impl->delivery_pool.join();
}

Result<std::uint16_t> Webhook::listen() {
  auto& s = *m_impl;
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
  return s.acceptor.local_endpoint().port();
}

asio::awaitable<void> Webhook::run() {
  auto self = m_impl;
  auto& s = *self;
  auto accept = Impl::accept_loop(self);
  asio::co_spawn(s.ex, std::move(accept), asio::detached);
  std::size_t n = std::max<std::size_t>(1, s.opts.workers);
  std::size_t done = 0;
  asio::steady_timer all_done(s.ex, Clock::time_point::max());
  for (std::size_t i = 0; i < n; ++i) {
    auto w = Impl::worker(self);
    asio::co_spawn(s.ex, std::move(w), [&](std::exception_ptr ep) {
      if (ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          s.log->error("worker: {}", e.what());
        }
      }
      if (++done == n) {
        all_done.cancel();
      }
    });
  }
  while (done < n) {
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Webhook::stop() {
  auto& s = *m_impl;
  s.stopping = true;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  for (auto& w : s.streams) { // idle keep-alive connections: closed now
    if (auto st = w.lock()) {
      st->socket().close(ignored);
    }
  }
  s.wake();
}

} // namespace pss::http

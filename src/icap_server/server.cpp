#include "http/listen.hpp"
#include "icap_server/server_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace pss::icap_server {

using namespace std::chrono_literals;

namespace {

constexpr std::size_t k_idle_read_size = 4 * 1024; // a read waiting for a request's first byte
// A lingering close after an error answer: at most this long between reads, this much read.
constexpr auto k_linger_time = std::chrono::seconds(2);
constexpr std::size_t k_linger_bytes = 1024 * 1024;

} // namespace

void Server::Impl::refresh_istag() {
  std::vector<EngineVersion> versions;
  bool known = true;
  for (const auto& e : backend->engines()) {
    auto id = backend->identity(e.name);
    if (!id) {
      known = false;
      versions.push_back({e.name, "", ""});
      continue;
    }
    versions.push_back({e.name, id->engine_version, id->definitions_version + "/" + id->settings});
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

std::optional<std::vector<std::string>> Server::Impl::route(const std::string& service) const {
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

std::string Server::Impl::service_text(const std::string& service) const {
  std::string names;
  for (const auto& e : backend->engines()) {
    if (service == "avscan" || e.name == service) {
      names += (names.empty() ? "" : ", ") + e.name;
    }
  }
  return "pssupervise " + opts.version + " (" + names + ")";
}

std::string Server::Impl::render_metrics() {
  engine_metrics.update(backend->states());
  open.set({}, static_cast<double>(conns.size() - evicting));
  open_idle.set({}, static_cast<double>(idle.size()));
  in_flight.set({}, static_cast<double>(scanning));
  return metrics.render();
}

void Server::Impl::mark_idle(Conn& c) {
  if (!c.idle) {
    c.idle = true;
    c.idle_at = idle.insert(idle.end(), &c);
  }
}

void Server::Impl::mark_busy(Conn& c) {
  if (c.idle) {
    idle.erase(c.idle_at);
    c.idle = false;
  }
}

void Server::Impl::close(Conn& c) {
  boost::system::error_code ignored;
  c.stream.socket().close(ignored); // its pending read ends: the session goes
}

void Server::Impl::forget(Conn& c) {
  mark_busy(c);
  if (c.evicted) {
    --evicting;
  }
  conns.erase(&c);
  if (stopping) {
    wake.cancel();
  }
}

bool Server::Impl::make_room(tcp::socket& sock) {
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

asio::awaitable<void> Server::Impl::accept_loop(std::shared_ptr<Impl> self) {
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

asio::awaitable<bool> Server::Impl::send(Conn& c, std::string_view data,
                                         std::chrono::milliseconds timeout) {
  c.stream.expires_after(timeout);
  auto [ec, n] =
      co_await asio::async_write(c.stream, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c) {
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
      auto [ec, n] =
          co_await c->stream.async_read_some(asio::buffer(in), asio::as_tuple(asio::use_awaitable));
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

asio::awaitable<void> Server::Impl::linger(Conn& c) {
  boost::system::error_code ignored;
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::string sink(k_idle_read_size, '\0');
  std::size_t dropped = 0;
  while (dropped < k_linger_bytes) {
    c.stream.expires_after(k_linger_time);
    auto [ec, n] =
        co_await c.stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      break;
    }
    dropped += n;
  }
}

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
  auto bound = http::listen_on(s.acceptor, s.opts.bind, s.opts.port);
  if (!bound) {
    return bound.error();
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
  return bound;
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

std::size_t Server::connections() const {
  return m_impl->conns.size();
}

std::size_t Server::scanning() const {
  return m_impl->scanning;
}

std::string Server::istag() const {
  return m_impl->istag;
}

} // namespace pss::icap_server

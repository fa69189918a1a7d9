#include "http/metrics_listener.hpp"

#include "http/listen.hpp"
#include "http/metrics.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <vector>

namespace pss::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t k_max_connections = 16; // scrapers: a few at most
constexpr auto k_read_timeout = 10s;
constexpr auto k_idle_timeout = 60s;
constexpr auto k_write_timeout = 10s;

} // namespace

struct MetricsListener::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor ex;
  std::function<std::string()> render;
  tcp::acceptor acceptor{ex};
  std::vector<std::weak_ptr<beast::tcp_stream>> streams;
  bool stopped = false;

  Impl(asio::any_io_executor e, std::function<std::string()> r)
      : ex(std::move(e)), render(std::move(r)) {}

  static asio::awaitable<void> session(std::shared_ptr<Impl> self,
                                       std::shared_ptr<beast::tcp_stream> stream) {
    beast::flat_buffer buf;
    for (bool first = true; !self->stopped; first = false) {
      bh::request_parser<bh::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(4 * 1024);
      stream->expires_after(first ? std::chrono::seconds(k_read_timeout) : k_idle_timeout);
      auto [ec, n] =
          co_await bh::async_read(*stream, buf, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) {
        break;
      }
      const auto& req = parser.get();
      bh::response<bh::string_body> res;
      res.version(req.version());
      if (req.method() == bh::verb::get && req.target() == "/metrics") {
        res.result(bh::status::ok);
        res.set(bh::field::content_type, k_metrics_content_type);
        res.body() = self->render();
      } else {
        res.result(bh::status::not_found);
        res.set(bh::field::content_type, "text/plain");
        res.body() = "only GET /metrics here\n";
      }
      res.keep_alive(req.keep_alive() && !self->stopped);
      res.prepare_payload();
      stream->expires_after(k_write_timeout);
      auto [wec, wn] = co_await bh::async_write(*stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !res.keep_alive()) {
        break;
      }
    }
    boost::system::error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    auto& s = *self;
    for (;;) {
      auto [ec, sock] = co_await s.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (s.stopped) {
        co_return;
      }
      if (ec) {
        log::get("metrics")->warn("accept: {}", ec.message()); // e.g. out of file descriptors
        asio::steady_timer t(s.ex, 50ms);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      std::erase_if(s.streams, [](const auto& w) { return w.expired(); });
      if (s.streams.size() >= k_max_connections) {
        continue; // the socket closes as it goes
      }
      auto stream = std::make_shared<beast::tcp_stream>(std::move(sock));
      s.streams.push_back(stream);
      auto task = session(self, std::move(stream));
      asio::co_spawn(s.ex, std::move(task), asio::detached);
    }
  }
};

MetricsListener::MetricsListener(asio::any_io_executor ex, std::function<std::string()> render)
    : m_impl(std::make_shared<Impl>(std::move(ex), std::move(render))) {}

MetricsListener::~MetricsListener() {
  stop();
}

Result<std::uint16_t> MetricsListener::listen(const std::string& bind, std::uint16_t port) {
  auto& s = *m_impl;
  auto bound = listen_on(s.acceptor, bind, port);
  if (!bound) {
    return bound.error();
  }
  auto accept = Impl::accept_loop(m_impl);
  asio::co_spawn(s.ex, std::move(accept), asio::detached);
  return bound;
}

void MetricsListener::stop() {
  auto& s = *m_impl;
  if (s.stopped) {
    return;
  }
  s.stopped = true;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  for (auto& w : s.streams) {
    if (auto st = w.lock()) {
      st->socket().close(ignored);
    }
  }
}

} // namespace pss::http

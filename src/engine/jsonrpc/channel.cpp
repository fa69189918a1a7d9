#include "engine/jsonrpc/channel.hpp"

#include "process/watchdog.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>

namespace pss::engine::jsonrpc {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using nlohmann::json;

struct Channel::Impl {
  asio::any_io_executor ex;
  Wire wire;
  Decoder decoder;
  std::optional<tcp::socket> sock;
  std::optional<asio::posix::stream_descriptor> to_child;
  std::optional<asio::posix::stream_descriptor> from_child;
  std::uint64_t next_id = 1;
  bool broken = false;

  Impl(asio::any_io_executor e, Wire w)
      : ex(std::move(e)), wire(w), decoder(w.framing, w.encoding) {}

  void close() {
    boost::system::error_code ignored;
    if (sock) {
      sock->close(ignored);
    }
    if (to_child) {
      to_child->close(ignored);
    }
    if (from_child) {
      from_child->close(ignored);
    }
  }

  asio::awaitable<boost::system::error_code> write(const std::string& bytes) {
    auto [ec, n] = sock ? co_await asio::async_write(*sock, asio::buffer(bytes),
                                                     asio::as_tuple(asio::use_awaitable))
                        : co_await asio::async_write(*to_child, asio::buffer(bytes),
                                                     asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }

  asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read(asio::mutable_buffer b) {
    auto [ec, n] =
        sock ? co_await sock->async_read_some(b, asio::as_tuple(asio::use_awaitable))
             : co_await from_child->async_read_some(b, asio::as_tuple(asio::use_awaitable));
    co_return std::pair{ec, n};
  }
};

Channel::Channel(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
void Channel::abort() {
  m_impl->broken = true;
  m_impl->close();
}

Channel::~Channel() = default;

bool Channel::usable() const {
  return !m_impl->broken;
}

asio::awaitable<Result<std::unique_ptr<Channel>>> Channel::connect(asio::any_io_executor ex,
                                                                   std::string host,
                                                                   std::uint16_t port, Wire wire,
                                                                   Clock::time_point deadline) {
  auto impl = std::make_unique<Impl>(ex, wire);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    co_return make_error("bad server address " + quote(host) + ": " + ec.message());
  }
  impl->sock.emplace(ex);
  auto* sock = &*impl->sock;
  process::Watchdog dog(ex, deadline, [sock] {
    boost::system::error_code ignored;
    sock->close(ignored);
  });
  auto [cec] =
      co_await sock->async_connect(tcp::endpoint(addr, port), asio::as_tuple(asio::use_awaitable));
  if (dog.fired()) {
    co_return make_error("cannot connect to " + host + ":" + std::to_string(port) + ": timed out");
  }
  if (cec) {
    co_return make_error("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                         cec.message());
  }
  sock->set_option(tcp::no_delay(true), ec);
  co_return std::unique_ptr<Channel>(new Channel(std::move(impl)));
}

std::unique_ptr<Channel> Channel::over_pipes(asio::any_io_executor ex, UniqueFd to_child,
                                             UniqueFd from_child, Wire wire) {
  auto impl = std::make_unique<Impl>(ex, wire);
  impl->to_child.emplace(ex, to_child.release());
  impl->from_child.emplace(ex, from_child.release());
  return std::unique_ptr<Channel>(new Channel(std::move(impl)));
}

asio::awaitable<CallResult> Channel::call(const std::string& method, const json& params,
                                          Clock::time_point deadline) {
  auto& s = *m_impl;
  CallResult out;
  if (s.broken) {
    out.error = "connection already broken";
    co_return out;
  }
  std::uint64_t id = s.next_id++;
  json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) {
    req["params"] = params;
  }
  // ensure_ascii: the request is the same bytes in every code page.
  std::string bytes = frame(req.dump(-1, ' ', true), s.wire.framing);
  Impl* raw = &s;
  process::Watchdog dog(s.ex, deadline, [raw] { raw->close(); });
  auto broke = [&](CallResult::Status st, std::string why) {
    s.broken = true;
    s.close();
    out.status = dog.fired() ? CallResult::Status::timeout : st;
    out.error = dog.fired() ? "no answer to " + method + " before the deadline" : std::move(why);
    return out;
  };

  if (auto ec = co_await s.write(bytes)) {
    co_return broke(CallResult::Status::lost, "cannot send " + method + ": " + ec.message());
  }
  std::array<char, 65536> buf{};
  for (;;) {
    auto msg = s.decoder.next();
    if (!msg) {
      co_return broke(CallResult::Status::bad_reply, "broken framing: " + msg.error().message);
    }
    if (!*msg) {
      auto [ec, n] = co_await s.read(asio::buffer(buf));
      if (n > 0) {
        s.decoder.feed(std::string_view(buf.data(), n));
        continue;
      }
      co_return broke(CallResult::Status::lost,
                      "connection closed during " + method +
                          (ec && ec != asio::error::eof ? ": " + ec.message() : ""));
    }
    json reply = json::parse(**msg, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) {
      co_return broke(CallResult::Status::bad_reply,
                      "a reply that is not JSON: " + (*msg)->substr(0, 200));
    }
    auto rid = reply.find("id");
    if (rid == reply.end() || !rid->is_number_unsigned() || rid->get<std::uint64_t>() != id) {
      continue; // a notification, or an answer to another id: not ours
    }
    if (auto r = reply.find("result"); r != reply.end()) {
      out.status = CallResult::Status::ok;
      out.result = std::move(*r);
      co_return out;
    }
    if (auto e = reply.find("error"); e != reply.end() && e->is_object()) {
      out.status = CallResult::Status::rpc_error;
      std::string message = e->value("message", std::string("(no message)"));
      out.error = e->contains("code") && (*e)["code"].is_number_integer()
                      ? "error " + std::to_string((*e)["code"].get<long long>()) + ": " + message
                      : message;
      co_return out;
    }
    co_return broke(CallResult::Status::bad_reply,
                    "a reply with neither result nor error: " + (*msg)->substr(0, 200));
  }
}

} // namespace pss::engine::jsonrpc

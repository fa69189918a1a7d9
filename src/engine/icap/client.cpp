#include "engine/icap/client.hpp"

#include "icap/chunked.hpp"
#include "icap/request_writer.hpp"
#include "process/watchdog.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace pss::engine::icap {

namespace asio = boost::asio;
namespace wire = ::pss::icap;
using tcp = asio::ip::tcp;
using process::Watchdog;
constexpr auto k_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t k_chunk = 64 * 1024; // body bytes per chunk sent, and read from the file
constexpr std::size_t k_read = 16 * 1024;  // bytes of an answer read at once

bool is_connection_loss(const boost::system::error_code& ec) {
  return ec == asio::error::connection_refused || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof ||
         ec == asio::error::not_connected || ec == asio::error::connection_aborted;
}

struct Connection {
  explicit Connection(const asio::any_io_executor& ex) : sock(ex) {}
  tcp::socket sock;
  int generation = 0; // the address it was opened to (set_url starts a new one)
  bool reused = false;
};

// One request on one connection: what came back, and whether the connection can carry another.
struct Attempt {
  Answer answer;
  bool started = false;  // a byte of an answer arrived
  bool reusable = false; // the exchange ended on a message boundary, and the server keeps it open
};

} // namespace

struct Client::Impl : std::enable_shared_from_this<Impl> {
  using Clock = std::chrono::steady_clock;
  asio::any_io_executor ex;
  wire::Url url;
  int generation = 0;
  int limit = 1;
  int open = 0; // connections that exist: idle, in use, or being opened
  std::vector<std::unique_ptr<Connection>> idle;
  std::deque<std::weak_ptr<asio::steady_timer>> waiters; // requests waiting for a connection
  std::uint64_t opened = 0;
  std::shared_ptr<spdlog::logger> log;

  std::string server() const { return url.text(); }

  Answer fail(const std::string& what, const boost::system::error_code& ec, const Watchdog& dog) {
    Answer a;
    if (dog.fired()) {
      a.timed_out = true;
      a.error = "timeout: ICAP server " + server() + " did not answer in time (" + what + ")";
      return a;
    }
    a.connection_lost = is_connection_loss(ec) || ec == asio::error::operation_aborted;
    a.error = "ICAP server " + server() + ": " + what + (ec ? ": " + ec.message() : "");
    return a;
  }

  void wake_one() {
    while (!waiters.empty()) {
      auto t = waiters.front().lock();
      waiters.pop_front();
      if (t) {
        t->cancel();
        return;
      }
    }
  }

  void close(std::unique_ptr<Connection> c) {
    boost::system::error_code ignored;
    c->sock.close(ignored);
    --open;
    wake_one();
  }

  void release(std::unique_ptr<Connection> c, bool reusable) {
    if (reusable && c->generation == generation && open <= limit) {
      idle.push_back(std::move(c));
      wake_one();
      return;
    }
    close(std::move(c));
  }

  void close_idle() {
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      close(std::move(c));
    }
  }

  // A request goes out in a few writes (head, chunks, last chunk) and waits for its answer:
  // with Nagle's algorithm the last small write waits for the ACK the server delays, ~40 ms
  // per file (measured with strace against c-icap).
  static void no_delay(Connection& c) {
    boost::system::error_code ignored;
    c.sock.set_option(tcp::no_delay(true), ignored);
  }

  asio::awaitable<boost::system::error_code> connect(Connection& c, TimePoint deadline) {
    Watchdog dog(ex, deadline, [&c] {
      boost::system::error_code ignored;
      c.sock.close(ignored);
    });
    boost::system::error_code ec;
    auto address = asio::ip::make_address(url.host, ec);
    if (!ec) {
      auto [e] = co_await c.sock.async_connect(tcp::endpoint(address, url.port), k_tuple);
      no_delay(c);
      co_return e;
    }
    tcp::resolver resolver(ex);
    auto [rec, results] =
        co_await resolver.async_resolve(url.host, std::to_string(url.port), k_tuple);
    if (rec) {
      co_return rec;
    }
    boost::system::error_code last = asio::error::host_not_found;
    for (const auto& entry : results) {
      if (c.sock.is_open()) {
        c.sock.close(ec);
      }
      auto [e] = co_await c.sock.async_connect(entry.endpoint(), k_tuple);
      if (!e) {
        no_delay(c);
        co_return e;
      }
      last = e;
      if (dog.fired()) {
        break;
      }
    }
    co_return last;
  }

  // A connection: an idle one (unless `fresh`), else a new one while fewer than `limit` are
  // open, else the first one released, up to the deadline. An Answer when there is none.
  asio::awaitable<std::pair<std::unique_ptr<Connection>, Answer>> acquire(bool fresh,
                                                                          TimePoint deadline) {
    auto self = shared_from_this();
    for (;;) {
      if (!fresh && !idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        c->reused = true;
        co_return std::pair{std::move(c), Answer{}};
      }
      if (fresh && !idle.empty() && open >= limit) {
        auto c = std::move(idle.front());
        idle.erase(idle.begin());
        close(std::move(c));
      }
      if (open < limit) {
        ++open;
        auto c = std::make_unique<Connection>(ex);
        c->generation = generation;
        Watchdog dog(ex, deadline, [] {});
        if (auto ec = co_await connect(*c, deadline)) {
          Answer a = fail("cannot connect", ec, dog);
          if (Clock::now() >= deadline) {
            a.timed_out = true;
            a.error = "timeout: ICAP server " + server() + " did not accept a connection in time";
          }
          close(std::move(c));
          co_return std::pair{nullptr, std::move(a)};
        }
        ++opened;
        log->debug("opened connection {} to ICAP server {} ({} open, at most {})", opened, server(),
                   open, limit);
        co_return std::pair{std::move(c), Answer{}};
      }
      if (Clock::now() >= deadline) {
        Answer a;
        a.timed_out = true;
        a.error = "timeout: all " + std::to_string(limit) + " connections to ICAP server " +
                  server() + " stayed busy";
        co_return std::pair{nullptr, std::move(a)};
      }
      auto t = std::make_shared<asio::steady_timer>(ex, deadline);
      waiters.push_back(t);
      co_await t->async_wait(k_tuple);
    }
  }

  // Sends the next `count` bytes of `fd` as chunks. An error message for a file that cannot be
  // read; the socket's error code otherwise.
  asio::awaitable<std::pair<boost::system::error_code, std::string>>
  send_chunks(tcp::socket& sock, int fd, std::uint64_t count, const std::filesystem::path& file) {
    std::vector<char> data(k_chunk);
    while (count > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(count, k_chunk));
      ssize_t n = ::read(fd, data.data(), want);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        co_return std::pair{boost::system::error_code{},
                            n == 0 ? "'" + file.native() + "' is shorter than its size"
                                   : errno_error("cannot read", file).message};
      }
      char size[20];
      const int len = std::snprintf(size, sizeof size, "%zx\r\n", static_cast<std::size_t>(n));
      std::array<asio::const_buffer, 3> bufs{asio::buffer(size, static_cast<std::size_t>(len)),
                                             asio::buffer(data.data(), static_cast<std::size_t>(n)),
                                             asio::buffer("\r\n", 2)};
      auto [ec, written] = co_await asio::async_write(sock, bufs, k_tuple);
      if (ec) {
        co_return std::pair{ec, std::string()};
      }
      count -= static_cast<std::uint64_t>(n);
    }
    co_return std::pair{boost::system::error_code{}, std::string()};
  }

  // Sends `head` (and the body of `body`: a preview first when it has one), then reads the
  // final answer, sending the rest of the body on "100 Continue".
  asio::awaitable<Attempt> run(Connection& c, const std::string& head, const RespmodRequest* body,
                               TimePoint deadline) {
    Attempt out;
    Watchdog dog(ex, deadline, [&c] {
      boost::system::error_code ignored;
      c.sock.close(ignored);
    });
    UniqueFd fd;
    if (body != nullptr) {
      fd = UniqueFd(::open(body->file.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) {
        out.answer.error = errno_error("cannot open", body->file).message;
        out.reusable = true; // not the server's fault: the connection is untouched
        co_return out;
      }
    }
    const std::uint64_t size = body ? body->size : 0;
    const std::uint64_t first = body && body->preview ? std::min(*body->preview, size) : size;
    const bool preview = body && body->preview;
    const bool ieof = preview && first == size;
    bool rest_sent = !preview || ieof;
    bool stopped_early = false; // the server closed while we sent: go read what it said

    auto send = [&](const std::string& bytes) -> asio::awaitable<boost::system::error_code> {
      auto [ec, n] = co_await asio::async_write(c.sock, asio::buffer(bytes), k_tuple);
      co_return ec;
    };
    // The head and the first part of the body; on "100 Continue", the rest.
    auto send_part = [&](std::uint64_t count,
                         bool last_ieof) -> asio::awaitable<std::optional<Answer>> {
      if (body != nullptr) {
        auto [ec, local] = co_await send_chunks(c.sock, fd.get(), count, body->file);
        if (!local.empty()) {
          Answer a;
          a.error = local;
          co_return a;
        }
        if (!ec) {
          std::string last;
          wire::write_last_chunk(last, last_ieof);
          ec = co_await send(last);
        }
        if (ec) {
          if (dog.fired() || !is_connection_loss(ec)) {
            co_return fail("cannot send the artifact", ec, dog);
          }
          stopped_early = true;
        }
      }
      co_return std::nullopt;
    };

    if (auto ec = co_await send(head)) {
      if (dog.fired() || !is_connection_loss(ec)) {
        out.answer = fail("cannot send the request", ec, dog);
        co_return out;
      }
      stopped_early = true;
    } else if (auto failed = co_await send_part(first, ieof)) {
      out.answer = std::move(*failed);
      co_return out;
    }

    wire::ResponseReader reader;
    std::vector<char> buf(k_read);
    for (;;) {
      auto [ec, n] = co_await c.sock.async_read_some(asio::buffer(buf), k_tuple);
      std::string_view data(buf.data(), n);
      while (!data.empty()) {
        auto p = reader.feed(data);
        if (!p) {
          out.started = true;
          out.answer.error =
              "ICAP server " + server() + " sent a malformed answer: " + p.error().message;
          co_return out;
        }
        data.remove_prefix(p->used);
        if (p->event == wire::ResponseReader::Event::continue_100) {
          if (rest_sent) { // nothing left to send: a server that asks twice is confused
            out.started = true;
            out.answer.error = "ICAP server " + server() +
                               " sent 100 Continue when no more of "
                               "the body was to come";
            co_return out;
          }
          rest_sent = true;
          log->debug("100 Continue after a preview of {} bytes: sending the other {}", first,
                     size - first);
          if (auto failed = co_await send_part(size - first, false)) {
            out.started = true;
            out.answer = std::move(*failed);
            co_return out;
          }
        } else if (p->event == wire::ResponseReader::Event::response) {
          out.started = true;
          const auto& r = reader.response();
          const std::string* conn = r.fields.find("Connection");
          // A final answer to a preview ends the exchange: the rest is never sent (RFC 3507
          // §4.5), and the connection carries the next request.
          out.reusable = data.empty() && !stopped_early && !(conn && wire::iequals(*conn, "close"));
          out.answer.response = r;
          co_return out;
        }
      }
      out.started = reader.started();
      if (ec) {
        std::string what = "connection closed " + reader.where();
        if (ec != asio::error::eof) {
          what = "receiving the answer (" + reader.where() + ")";
        }
        out.answer = fail(what, ec == asio::error::eof ? boost::system::error_code{} : ec, dog);
        out.answer.connection_lost =
            !dog.fired() && (ec == asio::error::eof || is_connection_loss(ec));
        co_return out;
      }
    }
  }

  // A request, sent again once on a new connection when a reused one was found closed.
  asio::awaitable<Answer> request(const std::string& head, const RespmodRequest* body,
                                  TimePoint deadline) {
    auto self = shared_from_this();
    for (int attempt = 0;; ++attempt) {
      auto [c, failed] = co_await acquire(attempt > 0, deadline);
      if (!c) {
        co_return failed;
      }
      const bool reused = c->reused;
      Attempt r = co_await run(*c, head, body, deadline);
      release(std::move(c), r.reusable);
      const bool stale = reused && !r.started && !r.answer.response && !r.answer.timed_out &&
                         r.answer.connection_lost;
      if (stale && attempt == 0) {
        close_idle(); // opened before it too: likely closed by the server alike
        continue;
      }
      co_return std::move(r.answer);
    }
  }
};

Client::Client(asio::any_io_executor ex, wire::Url url, int limit, std::string_view log_name)
    : m_impl(std::make_shared<Impl>()) {
  m_impl->log = log::get(log_name);
  m_impl->ex = std::move(ex);
  m_impl->url = std::move(url);
  m_impl->limit = std::max(1, limit);
}

Client::~Client() {
  m_impl->close_idle();
}

void Client::set_url(wire::Url url) {
  m_impl->url = std::move(url);
  ++m_impl->generation;
  m_impl->close_idle();
}

const wire::Url& Client::url() const {
  return m_impl->url;
}

void Client::set_limit(int limit) {
  m_impl->limit = std::max(1, limit);
  while (!m_impl->idle.empty() && m_impl->open > m_impl->limit) {
    auto c = std::move(m_impl->idle.back());
    m_impl->idle.pop_back();
    m_impl->close(std::move(c));
  }
  m_impl->wake_one();
}

int Client::limit() const {
  return m_impl->limit;
}

asio::awaitable<Answer> Client::options(TimePoint deadline) {
  auto impl = m_impl;
  co_return co_await impl->request(wire::write_options(impl->url), nullptr, deadline);
}

asio::awaitable<Answer> Client::respmod(const RespmodRequest& request, TimePoint deadline) {
  auto impl = m_impl;
  wire::RespmodHead h;
  h.url = impl->url;
  h.sha256 = request.sha256;
  h.size = request.size;
  h.allow_204 = request.allow_204;
  if (request.preview) {
    h.preview = std::min(*request.preview, request.size);
  }
  h.extra = request.extra;
  co_return co_await impl->request(wire::write_respmod_head(h), &request, deadline);
}

void Client::close_idle() {
  m_impl->close_idle();
}

std::uint64_t Client::opened() const {
  return m_impl->opened;
}

} // namespace pss::engine::icap

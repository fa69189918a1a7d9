#include "engine/clamd/client.hpp"

#include "engine/clamd/reply_reader.hpp"
#include "process/watchdog.hpp"
#include "util/posix.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

namespace pss::engine::clamd {

namespace asio = boost::asio;
using asio::use_awaitable;
using Socket = asio::generic::stream_protocol::socket;
using TimePoint = std::chrono::steady_clock::time_point;
constexpr auto k_tuple = asio::as_tuple(use_awaitable);

std::string Endpoint::describe() const {
  return is_unix ? "unix:" + path : "tcp:" + host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view s) {
  Endpoint e;
  if (s.starts_with("unix:")) {
    s.remove_prefix(5);
  } else if (s.starts_with("tcp:") || (!s.starts_with("/") && s.find(':') != s.npos)) {
    if (s.starts_with("tcp:")) {
      s.remove_prefix(4);
    }
    auto colon = s.rfind(':');
    if (colon == s.npos || colon == 0) {
      return make_error("clamd address " + quote(s) + ": expected host:port");
    }
    std::string_view port = s.substr(colon + 1);
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return make_error("clamd address " + quote(s) + ": invalid port " + quote(port));
    }
    e.is_unix = false;
    e.host = s.substr(0, colon);
    if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
      e.host = e.host.substr(1, e.host.size() - 2);
    }
    e.port = static_cast<std::uint16_t>(value);
    return e;
  }
  if (s.empty()) {
    return make_error("clamd address is empty");
  }
  e.path = s;
  return e;
}

namespace {

using process::Watchdog;

bool is_connection_loss(const boost::system::error_code& ec) {
  return ec == asio::error::connection_refused || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof ||
         ec == asio::error::not_connected || ec == boost::system::errc::no_such_file_or_directory ||
         ec == asio::error::connection_aborted;
}

Outcome failure(const Endpoint& ep, const std::string& what, const boost::system::error_code& ec,
                const Watchdog& dog) {
  Outcome o;
  if (dog.fired()) {
    o.timed_out = true;
    o.error = "timeout: clamd at " + ep.describe() + " did not answer in time (" + what + ")";
    return o;
  }
  o.connection_lost = is_connection_loss(ec);
  o.error = "clamd at " + ep.describe() + ": " + what + ": " + ec.message();
  return o;
}

using Addresses = std::vector<asio::generic::stream_protocol::endpoint>;

// Connects to a unix socket, or to the first of `addresses` that accepts (resolving the host
// into it first when it is empty; emptied again when none accepts).
asio::awaitable<boost::system::error_code> connect(Socket& sock, const Endpoint& ep,
                                                   Addresses& addresses) {
  if (ep.is_unix) {
    asio::local::stream_protocol::endpoint local(ep.path);
    auto [ec] =
        co_await sock.async_connect(asio::generic::stream_protocol::endpoint(local), k_tuple);
    co_return ec;
  }
  if (addresses.empty()) {
    asio::ip::tcp::resolver resolver(sock.get_executor());
    auto [rec, results] =
        co_await resolver.async_resolve(ep.host, std::to_string(ep.port), k_tuple);
    if (rec) {
      co_return rec;
    }
    if (addresses.empty()) { // another command may have resolved it meanwhile
      for (const auto& entry : results) {
        addresses.emplace_back(entry.endpoint());
      }
    }
  }
  boost::system::error_code last = asio::error::host_not_found;
  Addresses tried = addresses; // a copy: another command may drop them while this one waits
  for (const auto& address : tried) {
    if (sock.is_open()) {
      sock.close();
    }
    auto [ec] = co_await sock.async_connect(address, k_tuple);
    if (!ec) {
      co_return ec;
    }
    last = ec;
  }
  addresses.clear();
  co_return last;
}

// One connection for one command: the socket, its deadline, and the steps every command
// shares (connect and send the framed command; read the reply). Lives in the caller's frame.
class Exchange {
public:
  Exchange(asio::any_io_executor ex, const Endpoint& ep, Addresses& addresses, TimePoint deadline)
      : m_sock(ex), m_dog(ex, deadline, [this] { m_sock.close(); }), m_ep(ep),
        m_addresses(addresses) {}
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  Socket& socket() { return m_sock; }

  // Connects and sends "z<command>\0"; a failure Outcome if either fails.
  asio::awaitable<std::optional<Outcome>> open(std::string_view command) {
    if (auto ec = co_await connect(m_sock, m_ep, m_addresses)) {
      co_return failure(m_ep, "cannot connect", ec, m_dog);
    }
    std::string framed = frame_command(command);
    if (auto [ec, n] = co_await asio::async_write(m_sock, asio::buffer(framed), k_tuple); ec) {
      co_return failure(m_ep, "cannot send " + std::string(command), ec, m_dog);
    }
    co_return std::nullopt;
  }

  // Reads and parses clamd's reply (ReplyReader: up to the first NUL or newline, bounded);
  // `what` says what was asked, for the error when none came.
  asio::awaitable<Outcome> reply(const std::string& what) {
    ReplyReader reader;
    std::array<char, 4096> buf{};
    boost::system::error_code ec;
    while (!ec) {
      auto [rec, n] = co_await m_sock.async_read_some(asio::buffer(buf), k_tuple);
      if (reader.feed(std::string_view(buf.data(), n))) {
        break;
      }
      ec = rec;
    }
    if (auto o = reader.outcome(ec == asio::error::eof && !m_dog.fired())) {
      co_return *o;
    }
    co_return failure(m_ep, what, ec, m_dog);
  }

  Outcome fail(const std::string& what, const boost::system::error_code& ec) const {
    return failure(m_ep, what, ec, m_dog);
  }
  bool expired() const { return m_dog.fired(); }

private:
  Socket m_sock;
  Watchdog m_dog;
  const Endpoint& m_ep;
  Addresses& m_addresses;
};

Outcome local_error(std::string message) {
  Outcome o;
  o.error = std::move(message);
  return o;
}

} // namespace

Client::Client(asio::any_io_executor ex, Endpoint endpoint)
    : m_ex(std::move(ex)), m_endpoint(std::move(endpoint)) {}

asio::awaitable<Outcome> Client::command(std::string command, TimePoint deadline) {
  Exchange x(m_ex, m_endpoint, m_addresses, deadline);
  if (auto failed = co_await x.open(command)) {
    co_return *failed;
  }
  co_return co_await x.reply("no reply to " + command);
}

asio::awaitable<Outcome> Client::instream(const std::filesystem::path& file, TimePoint deadline) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    co_return local_error(errno_error("cannot open", file).message);
  }
  Exchange x(m_ex, m_endpoint, m_addresses, deadline);
  if (auto failed = co_await x.open("INSTREAM")) {
    co_return *failed;
  }
  std::vector<char> chunk(k_max_chunk);
  bool stopped_early = false; // clamd closed on us (e.g. size limit): go read its reply
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      co_return local_error(errno_error("cannot read", file).message);
    }
    std::string header = chunk_header(static_cast<std::uint32_t>(n));
    std::array<asio::const_buffer, 2> bufs{asio::buffer(header),
                                           asio::buffer(chunk.data(), static_cast<std::size_t>(n))};
    auto [ec, written] = co_await asio::async_write(x.socket(), bufs, k_tuple);
    if (ec) {
      if (x.expired() || !is_connection_loss(ec)) {
        co_return x.fail("cannot stream the artifact", ec);
      }
      stopped_early = true;
      break;
    }
    if (n == 0) {
      break; // the zero-length chunk just sent ends the stream
    }
  }
  co_return co_await x.reply(stopped_early ? "connection closed while streaming"
                                           : "no reply to INSTREAM");
}

asio::awaitable<Outcome> Client::fildes(const std::filesystem::path& file, TimePoint deadline) {
  if (!m_endpoint.is_unix) {
    co_return local_error("FILDES needs a unix socket, not " + m_endpoint.describe());
  }
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    co_return local_error(errno_error("cannot open", file).message);
  }
  Exchange x(m_ex, m_endpoint, m_addresses, deadline);
  if (auto failed = co_await x.open("FILDES")) {
    co_return *failed;
  }
  // One data byte carrying the descriptor as ancillary data (clamd's own client does this).
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  int raw_fd = fd.get();
  std::memcpy(CMSG_DATA(cmsg), &raw_fd, sizeof raw_fd);
  for (;;) {
    ssize_t n = ::sendmsg(x.socket().native_handle(), &msg, MSG_NOSIGNAL);
    if (n == 1) {
      break;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      auto [ec] = co_await x.socket().async_wait(Socket::wait_write, k_tuple);
      if (ec) {
        co_return x.fail("cannot pass the file", ec);
      }
      continue;
    }
    co_return x.fail("cannot pass the file",
                     boost::system::error_code(errno, boost::system::system_category()));
  }
  co_return co_await x.reply("no reply to FILDES");
}

} // namespace pss::engine::clamd

// A clamd client over a unix or TCP socket: one command per connection, z-framing,
// INSTREAM in chunks, every connect/send/receive bounded by a deadline. Used from one thread
// (its executor's); several commands may be in flight at once.
#pragma once

#include "engine/clamd/outcome.hpp"
#include "engine/clamd/protocol.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pss::engine::clamd {

struct Endpoint {
  bool is_unix = true;
  std::string path; // unix socket
  std::string host; // tcp
  std::uint16_t port = 0;
  std::string describe() const; // "unix:/run/clamd.sock", "tcp:127.0.0.1:3310"
};

// "unix:/path", "/path" (unix), "tcp:host:port" or "host:port" (tcp); Error otherwise.
Result<Endpoint> parse_endpoint(std::string_view s);

class Client {
public:
  Client(boost::asio::any_io_executor ex, Endpoint endpoint);

  const Endpoint& endpoint() const { return m_endpoint; }
  // A simple command (PING, VERSION, SHUTDOWN ...): the reply line.
  boost::asio::awaitable<Outcome> command(std::string command,
                                          std::chrono::steady_clock::time_point deadline);
  // Streams a file with zINSTREAM. If clamd closes early (size limit), the reply it sent
  // before closing is still read and returned.
  boost::asio::awaitable<Outcome> instream(const std::filesystem::path& file,
                                           std::chrono::steady_clock::time_point deadline);

  // Passes the open file to clamd with zFILDES (SCM_RIGHTS; unix sockets only): clamd scans
  // it in place, with no copy and no temporary file on its side.
  boost::asio::awaitable<Outcome> fildes(const std::filesystem::path& file,
                                         std::chrono::steady_clock::time_point deadline);

private:
  boost::asio::any_io_executor m_ex;
  Endpoint m_endpoint;
  // TCP: the addresses the host resolved to, resolved on first use and kept (resolving for
  // every scan cost a hop to Asio's resolver thread and a getaddrinfo each time); dropped when
  // none of them takes a connection, so that the next command resolves the name again.
  std::vector<boost::asio::generic::stream_protocol::endpoint> m_addresses;
};

} // namespace pss::engine::clamd

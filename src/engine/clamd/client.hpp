// A clamd client over a unix or TCP socket: one command per connection, z-framing,
// INSTREAM in chunks, every connect/send/receive bounded by a deadline.
#pragma once

#include "engine/clamd/outcome.hpp"
#include "engine/clamd/protocol.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

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
};

} // namespace pss::engine::clamd

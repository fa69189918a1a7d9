// One JSON-RPC 2.0 connection to a vendor server: a loopback TCP socket, or the server's
// stdin/stdout pipes. One call at a time; every call bounded by its deadline. A channel
// whose call timed out, or whose stream broke, is not reused.
#pragma once

#include "engine/jsonrpc/framing.hpp"
#include "util/posix.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace pss::engine::jsonrpc {

using Clock = std::chrono::steady_clock;

struct CallResult {
  enum class Status {
    ok,        // `result` holds the result
    rpc_error, // the server answered with an error object (`error` says what)
    lost,      // the connection broke or was refused: the server may have died
    timeout,   // no answer before the deadline: the server may be wedged
    bad_reply, // an answer that is not JSON-RPC
  };
  Status status = Status::lost;
  nlohmann::json result;
  std::string error;
};

struct Wire {
  Framing framing = Framing::line;
  text::Encoding encoding = text::Encoding::utf8;
};

class Channel {
public:
  // Connects to host:port (loopback) before `deadline`; Error says why not.
  static boost::asio::awaitable<Result<std::unique_ptr<Channel>>>
  connect(boost::asio::any_io_executor ex, std::string host, std::uint16_t port, Wire wire,
          Clock::time_point deadline);
  // Over a child's stdio: we write `to_child` (its stdin) and read `from_child` (its stdout).
  static std::unique_ptr<Channel> over_pipes(boost::asio::any_io_executor ex, UniqueFd to_child,
                                             UniqueFd from_child, Wire wire);
  ~Channel();

  boost::asio::awaitable<CallResult> call(const std::string& method, const nlohmann::json& params,
                                          Clock::time_point deadline);
  // Closes it now: a call in progress ends as lost (its server died under it).
  void abort();
  // False once a call broke the stream (lost, timeout, bad reply).
  bool usable() const;

  struct Impl;

private:
  explicit Channel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace pss::engine::jsonrpc

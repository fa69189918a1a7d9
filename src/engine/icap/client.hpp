// An ICAP client (RFC 3507) for one service: OPTIONS, and RESPMOD of a file with its body
// chunked and an optional preview answered by "100 Continue". Connections are kept alive and
// pooled, at most `limit` at once; a request that got no byte of an answer on a reused
// connection (the server closed it while idle) is sent once more on a new one. Every connect,
// send and receive is bounded by the request's deadline. Used from one thread (its executor's).
#pragma once

#include "icap/head.hpp"
#include "icap/response_reader.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pss::engine::icap {

using TimePoint = std::chrono::steady_clock::time_point;

// One request's outcome: the server's final answer, or why there is none.
struct Answer {
  std::optional<::pss::icap::Response> response;
  std::string error;            // set when there is no response: a sentence naming the server
  bool timed_out = false;       // the deadline passed
  bool connection_lost = false; // refused, reset or closed before an answer: the server is gone
};

struct RespmodRequest {
  std::filesystem::path file;
  std::uint64_t size = 0;
  std::string sha256;
  bool allow_204 = false;
  std::optional<std::uint64_t> preview; // the server's Preview; none: the whole body at once
  ::pss::icap::Fields extra;            // more ICAP fields (the manifest's request_headers)
};

class Client {
public:
  // `log_name`: the engine's logger (connections and previews are logged at debug level).
  Client(boost::asio::any_io_executor ex, ::pss::icap::Url url, int limit,
         std::string_view log_name);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Another address (our own server restarted on a new port): idle connections are dropped.
  void set_url(::pss::icap::Url url);
  const ::pss::icap::Url& url() const;
  // At most this many connections at once (the server's Max-Connections within the manifest's).
  void set_limit(int limit);
  int limit() const;

  boost::asio::awaitable<Answer> options(TimePoint deadline);
  boost::asio::awaitable<Answer> respmod(const RespmodRequest& request, TimePoint deadline);

  // Closes the idle connections (stop, or a server known to be gone).
  void close_idle();
  // Connections opened since the start (for the log and tests of keep-alive).
  std::uint64_t opened() const;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::engine::icap

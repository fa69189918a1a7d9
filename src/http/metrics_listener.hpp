// A small HTTP listener that serves GET /metrics (Prometheus text) and nothing else, for a front
// end whose own protocol is not HTTP (the ICAP server). Few connections at once, every read and
// write bounded; anything else is 404.
#pragma once

#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pss::http {

class MetricsListener {
public:
  // `render` gives the page at each request (on the executor's thread).
  MetricsListener(boost::asio::any_io_executor ex, std::function<std::string()> render);
  ~MetricsListener();
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  // Binds, listens and starts serving; returns the port bound (for 0). Error: the address is
  // taken, not an IP address, ...
  Result<std::uint16_t> listen(const std::string& bind, std::uint16_t port);
  // Stops accepting and closes the connections (idempotent).
  void stop();

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::http

// Opens a TCP listening socket on an address and port (0: any free port), for every server
// of ours (webhook, ICAP, metrics). Include only where Asio is compiled in already.
#pragma once

#include "util/error.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>

namespace pss::http {

// Returns the port bound, or an error naming the address ("--bind: not an IP address" or
// "cannot listen on ADDR:PORT: why").
Result<std::uint16_t> listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& bind,
                                std::uint16_t port);

} // namespace pss::http

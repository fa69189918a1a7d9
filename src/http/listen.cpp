#include "http/listen.hpp"

namespace pss::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Result<std::uint16_t> listen_on(tcp::acceptor& acceptor, const std::string& bind,
                                std::uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(bind, ec);
  if (ec) {
    return make_error("--bind: not an IP address: '" + bind + "'");
  }
  tcp::endpoint ep(addr, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) {
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor.bind(ep, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return make_error("cannot listen on " + bind + ":" + std::to_string(port) + ": " +
                      ec.message());
  }
  return acceptor.local_endpoint().port();
}

} // namespace pss::http

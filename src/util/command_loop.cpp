#include "util/command_loop.hpp"

#include "util/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace pss {

namespace asio = boost::asio;

struct CommandLoop::Impl {
  asio::io_context io;
  asio::signal_set signals{io, SIGINT, SIGTERM};
  asio::steady_timer give_up{io};
  bool main_done = false;
};

CommandLoop::CommandLoop() : m_impl(std::make_unique<Impl>()) {}

CommandLoop::~CommandLoop() = default;

asio::any_io_executor CommandLoop::executor() {
  return m_impl->io.get_executor();
}

void CommandLoop::on_signal(std::function<void(int)> handler) {
  m_impl->signals.async_wait([handler = std::move(handler)](boost::system::error_code ec, int sig) {
    if (!ec) {
      handler(sig);
    }
  });
}

void CommandLoop::give_up_after(asio::awaitable<void> stopping, std::chrono::seconds limit,
                                int status, std::string why) {
  asio::co_spawn(m_impl->io, std::move(stopping),
                 [this, limit, status, why = std::move(why)](std::exception_ptr) {
                   if (m_impl->main_done) {
                     return;
                   }
                   m_impl->give_up.expires_after(limit);
                   m_impl->give_up.async_wait([status, why](boost::system::error_code ec) {
                     if (!ec) {
                       log::get("pssupervise")->error("{}; exiting", why);
                       std::fflush(stdout);
                       std::_Exit(status);
                     }
                   });
                 });
}

void CommandLoop::run(asio::awaitable<void> main) {
  std::exception_ptr failure;
  asio::co_spawn(m_impl->io, std::move(main), [this, &failure](std::exception_ptr ep) {
    failure = ep;
    m_impl->main_done = true;
    m_impl->signals.cancel();
    m_impl->give_up.cancel();
  });
  m_impl->io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
}

} // namespace pss

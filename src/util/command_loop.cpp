#include "util/command_loop.hpp"

#include "util/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>

namespace pss {

namespace asio = boost::asio;

struct CommandLoop::Impl {
  asio::io_context io;
  asio::signal_set signals{io, SIGINT, SIGTERM};
  asio::steady_timer give_up{io};
  bool main_done = false;
  std::unique_ptr<asio::signal_set> hangups;
  std::unique_ptr<asio::steady_timer> schedule;
  std::chrono::seconds every{0};
  std::function<asio::awaitable<void>(bool)> reload;
  bool reloading = false;
  std::optional<bool> next; // one more asked for while one ran: scheduled or not

  void wait_hangup() {
    hangups->async_wait([this](boost::system::error_code ec, int) {
      if (!ec) {
        want_reload(false);
        wait_hangup();
      }
    });
  }

  void wait_schedule() {
    schedule->expires_after(every);
    schedule->async_wait([this](boost::system::error_code ec) {
      if (!ec) {
        want_reload(true);
        wait_schedule();
      }
    });
  }

  void want_reload(bool scheduled) {
    if (reloading) {
      next = next.value_or(false) || scheduled; // an update covers a reload
    } else {
      start_reload(scheduled);
    }
  }

  void start_reload(bool scheduled) {
    reloading = true;
    asio::co_spawn(io, reload(scheduled), [this](std::exception_ptr ep) {
      if (ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          log::get("pssupervise")->error("reload: {}", e.what());
        }
      }
      reloading = false;
      if (auto again = std::exchange(next, std::nullopt); again && !main_done) {
        start_reload(*again);
      }
    });
  }
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

void CommandLoop::on_reload(std::function<asio::awaitable<void>(bool)> handler,
                            std::chrono::seconds every) {
  m_impl->reload = std::move(handler);
  m_impl->hangups = std::make_unique<asio::signal_set>(m_impl->io, SIGHUP);
  m_impl->wait_hangup();
  if (every.count() > 0) {
    m_impl->every = every;
    m_impl->schedule = std::make_unique<asio::steady_timer>(m_impl->io);
    m_impl->wait_schedule();
  }
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
    if (m_impl->hangups) {
      m_impl->hangups->cancel();
    }
    if (m_impl->schedule) {
      m_impl->schedule->cancel();
    }
  });
  m_impl->io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
}

} // namespace pss

// A deadline on a chain of I/O: when it passes, `on_expire` runs (it closes the socket or
// pipe, which aborts whatever operation is pending). Disarmed when destroyed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace pss::process {

class Watchdog {
public:
  Watchdog(boost::asio::any_io_executor ex, std::chrono::steady_clock::time_point deadline,
           std::function<void()> on_expire)
      : m_timer(std::make_shared<boost::asio::steady_timer>(ex, deadline)),
        m_state(std::make_shared<State>()) {
    m_timer->async_wait([state = m_state, f = std::move(on_expire)](boost::system::error_code ec) {
      if (!ec && state->armed) {
        state->fired = true;
        f();
      }
    });
  }
  ~Watchdog() {
    m_state->armed = false;
    m_timer->cancel();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  bool fired() const { return m_state->fired; }

private:
  struct State {
    bool armed = true;
    bool fired = false;
  };
  std::shared_ptr<boost::asio::steady_timer> m_timer;
  std::shared_ptr<State> m_state;
};

} // namespace pss::process

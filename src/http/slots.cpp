#include "http/slots.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pss::http {

namespace asio = boost::asio;

struct Slots::Waiter {
  explicit Waiter(const asio::any_io_executor& ex, std::chrono::steady_clock::time_point t)
      : timer(ex, t) {}
  asio::steady_timer timer;
  bool granted = false; // release() handed this waiter a slot
};

Slots::Slots(asio::any_io_executor ex, std::size_t n)
    : m_ex(std::move(ex)), m_capacity(std::max<std::size_t>(1, n)) {}

Slots::~Slots() = default;

asio::awaitable<bool> Slots::acquire(std::chrono::steady_clock::time_point deadline) {
  if (m_closed) {
    co_return false;
  }
  if (m_held < m_capacity && m_waiters.empty()) {
    ++m_held;
    co_return true;
  }
  auto w = std::make_shared<Waiter>(m_ex, deadline);
  m_waiters.push_back(w);
  // Woken by release() (granted), close(), or the deadline. A slot granted after the timer
  // fired but before this resumes is kept: the caller is just late, not refused.
  co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (w->granted) {
    co_return true;
  }
  std::erase(m_waiters, w);
  co_return false;
}

void Slots::release() {
  if (m_held > 0) {
    --m_held;
  }
  while (!m_closed && m_held < m_capacity && !m_waiters.empty()) {
    auto w = std::move(m_waiters.front());
    m_waiters.pop_front();
    w->granted = true;
    ++m_held;
    w->timer.cancel();
  }
}

void Slots::close() {
  m_closed = true;
  for (auto& w : m_waiters) {
    w->timer.cancel();
  }
}

} // namespace pss::http

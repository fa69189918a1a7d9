// A counting semaphore for coroutines on one executor: at most `n` holders, waiters served in
// arrival order, every wait bounded by a deadline. The webhook's stages (downloads, scans)
// each hold one, so that a bounty waits only for its own stage, never for another's network.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>

namespace pss::http {

class Slots {
public:
  Slots(boost::asio::any_io_executor ex, std::size_t n);
  ~Slots();
  Slots(const Slots&) = delete;
  Slots& operator=(const Slots&) = delete;

  // True: a slot is held (give it back with release()). False: `deadline` came first, or
  // close() was called.
  boost::asio::awaitable<bool> acquire(std::chrono::steady_clock::time_point deadline);
  void release();
  // Every wait, now and later, ends with false (a service stopping).
  void close();

  std::size_t held() const { return m_held; }
  std::size_t waiting() const { return m_waiters.size(); }

private:
  struct Waiter;
  boost::asio::any_io_executor m_ex;
  std::size_t m_capacity;
  std::size_t m_held = 0;
  bool m_closed = false;
  std::deque<std::shared_ptr<Waiter>> m_waiters;
};

} // namespace pss::http

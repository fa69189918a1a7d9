// The worker loop the backends that scan here share: `concurrency` workers, each starting its
// next job (fetching, hashing, a cache lookup: work for the pool) while the current one is
// finished, so at most 2 x concurrency jobs are in flight and no stage waits for another.
// Include only in sources that compile Asio's coroutines already (local.cpp, cached.cpp).
#pragma once

#include "backend/backend.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <vector>

namespace pss::backend {

// start(Job) -> P begins a job; finish(P) -> awaitable<JobResult> ends it; failed(P, what)
// -> JobResult answers a job whose finish threw (a bug must not lose it). `stopped` is read
// before each job: once true, the workers take no new one.
template <class Start, class Finish, class Failed>
boost::asio::awaitable<void> run_look_ahead(std::vector<Job>& jobs, std::size_t concurrency,
                                            const bool& stopped, const ResultSink& sink,
                                            Start start, Finish finish, Failed failed) {
  namespace asio = boost::asio;
  if (jobs.empty()) {
    co_return;
  }
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0;
  std::size_t running = std::max<std::size_t>(1, std::min(concurrency, jobs.size()));
  asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    using Pending = decltype(start(std::move(jobs[0])));
    std::optional<Pending> pending;
    if (next < jobs.size()) {
      pending.emplace(start(std::move(jobs[next++])));
    }
    while (pending && !stopped) {
      Pending current = std::move(*pending);
      pending.reset();
      if (next < jobs.size() && !stopped) {
        pending.emplace(start(std::move(jobs[next++])));
      }
      JobResult r;
      try {
        auto done = finish(current); // named: GCC 12 may destroy an awaited temporary twice
        r = co_await std::move(done);
      } catch (const std::exception& e) {
        r = failed(current, e.what());
      }
      sink(std::move(r));
    }
    if (--running == 0) {
      all_done.cancel();
    }
  };
  for (std::size_t i = 0, n = running; i < n; ++i) {
    asio::co_spawn(ex, worker(), asio::detached);
  }
  // Workers may finish before we get here (a job that never suspends); cancel() only wakes
  // a wait already pending, so check the count first. Single-threaded: no race.
  while (running > 0) {
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

} // namespace pss::backend

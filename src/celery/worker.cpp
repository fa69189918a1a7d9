#include "celery/worker.hpp"

#include "util/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace pss::celery {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto k_io_timeout = 5s;       // any result-backend call
constexpr auto k_first_backoff = 100ms; // reconnect back-off, doubling...
constexpr auto k_max_backoff = 5s;      // ...to this

struct Completion {
  TaskMessage message; // to acknowledge it
  TaskOutcome meta;
};

} // namespace

struct Worker::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor ex;
  WorkerOptions opts;
  TaskHandler handler;
  std::shared_ptr<spdlog::logger> log = log::get("worker");

  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0; // received and not yet acknowledged
  bool stopping = false;
  bool writer_stop = false;
  std::deque<Completion> completions; // run, result to store (writer)
  std::deque<TaskMessage> to_ack;     // stored, to acknowledge (consumer)
  std::thread consumer;
  std::thread writer;

  Impl(asio::any_io_executor e, WorkerOptions o, TaskHandler h)
      : ex(std::move(e)), opts(std::move(o)), handler(std::move(h)) {}

  // Sleeps `d` unless `until` becomes true; returns `until`'s value.
  template <typename Pred>
  bool pause(std::chrono::milliseconds d, Pred until) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, d, until);
  }

  // Logs a broker outage once, then its end; doubles the back-off while it lasts.
  struct Outage {
    bool down = false;
    std::chrono::milliseconds backoff = k_first_backoff;
    void failed(Impl& s, const char* role, const Error& e) {
      if (!down) {
        s.log->warn("{}: {}; retrying with back-off", role, e.message);
        down = true;
      }
    }
    void ok(Impl& s, const char* role, const std::string& where) {
      if (down) {
        s.log->info("{} connection to {} is back", role, where);
      }
      down = false;
      backoff = k_first_backoff;
    }
    template <typename Pred>
    bool wait(Impl& s, Pred give_up) {
      bool gave_up = s.pause(backoff, give_up);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, k_max_backoff);
      return gave_up;
    }
  };

  // --- the consumer thread: takes tasks, and acknowledges them on the same connection -------

  void consume() {
    ConsumerOptions co;
    co.queue = opts.queue;
    co.concurrency = opts.concurrency;
    co.visibility_timeout = opts.visibility_timeout;
    co.give_up = [this] {
      std::lock_guard lock(mu);
      return writer_stop;
    };
    std::unique_ptr<Consumer> broker = make_consumer(opts.broker, std::move(co));
    const auto finished = [this] { return writer_stop; };
    Outage outage;
    for (;;) {
      std::deque<TaskMessage> settle;
      bool fetch = false;
      std::size_t busy = 0;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, broker->idle_every(), [this] {
          return !to_ack.empty() || writer_stop || (!stopping && in_flight < opts.concurrency);
        });
        if (writer_stop && to_ack.empty()) {
          return; // drained (or given up): what is left unacknowledged is redelivered
        }
        settle.swap(to_ack);
        busy = in_flight;
        fetch = !stopping && in_flight < opts.concurrency; // prefetch: one per free slot
      }
      if (!settle.empty()) {
        // Late acknowledgement: only now, with its result stored, is a task done.
        std::size_t done = 0;
        for (; done < settle.size(); ++done) {
          auto r = broker->ack(settle[done]);
          if (!r) {
            outage.failed(*this, "broker", r.error());
            break;
          }
        }
        {
          std::lock_guard lock(mu);
          in_flight -= done;
          to_ack.insert(to_ack.begin(), settle.begin() + static_cast<std::ptrdiff_t>(done),
                        settle.end()); // retried after a reconnect
        }
        cv.notify_all();
        if (done < settle.size() && outage.wait(*this, finished)) {
          return;
        }
        continue;
      }
      if (!fetch) {
        broker->idle();
        continue;
      }
      if (auto c = broker->ensure_connected(); !c) {
        outage.failed(*this, "broker", c.error());
        outage.wait(*this, [this] { return stopping || writer_stop; });
        continue;
      }
      outage.ok(*this, "broker", broker->describe());
      // Short waits while tasks run: their acknowledgements go out on this thread.
      auto r = broker->next(busy > 0 ? 100ms : 1000ms);
      if (!r) {
        outage.failed(*this, "broker", r.error());
        continue;
      }
      if (!*r) {
        continue;
      }
      {
        std::lock_guard lock(mu);
        ++in_flight;
      }
      asio::post(ex, [self = shared_from_this(), m = std::move(**r)]() mutable {
        auto task = self->execute(std::move(m));
        asio::co_spawn(self->ex, std::move(task), asio::detached);
      });
    }
  }

  // --- the executor side ---------------------------------------------------------------

  asio::awaitable<void> execute(TaskMessage m) {
    log->info("task {} ({}) received{}", m.id, m.task, m.redelivered ? " (redelivered)" : "");
    TaskOutcome out;
    try {
      auto run = handler(m);
      out = co_await std::move(run);
    } catch (const std::exception& e) { // a handler must not throw; a bug must not lose it
      out =
          failure_meta(m.id, "RuntimeError", "builtins", Json::array({std::string(e.what())}), "");
    }
    {
      std::lock_guard lock(mu);
      completions.push_back({std::move(m), std::move(out)});
    }
    cv.notify_all();
  }

  // --- the writer thread: stores results, then hands the message over to be acknowledged --

  void write() {
    auto give_up = [this] { return writer_stop; };
    std::optional<Redis> backend;
    Outage outage;
    for (;;) {
      Completion c;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, 1s, [this] { return !completions.empty() || writer_stop; });
        if (completions.empty()) {
          if (writer_stop) {
            return;
          }
          continue;
        }
        c = completions.front();
      }
      if (c.meta) {
        if (!backend || backend->broken()) {
          backend.reset();
          auto conn = Redis::connect(opts.result_backend, k_io_timeout);
          if (!conn) {
            outage.failed(*this, "result backend", conn.error());
            if (outage.wait(*this, give_up)) {
              return;
            }
            continue;
          }
          backend = std::move(*conn);
          outage.ok(*this, "result backend", opts.result_backend.describe());
        }
        if (!store(*backend, c)) {
          pause(k_first_backoff, give_up); // then retried (reconnecting if need be)
          continue;
        }
      }
      {
        std::lock_guard lock(mu);
        completions.pop_front();
        to_ack.push_back(std::move(c.message));
      }
      cv.notify_all();
    }
  }

  bool store(Redis& conn, const Completion& c) {
    const std::string& id = c.message.id;
    std::string key = result_key(id);
    auto existing = conn.command({"GET", key});
    if (!existing) {
      log->warn("result backend: {}", existing.error().message);
      return false;
    }
    if (!existing->is_nil()) {
      auto meta = parse_result_meta(existing->str);
      if (meta && meta->status == k_success) {
        log->info("task {} already has a SUCCESS result: kept", id);
        return true; // never overwrite a SUCCESS (a redelivered task)
      }
    }
    auto r = conn.transaction({{"SETEX", key, std::to_string(k_result_expires.count()), *c.meta},
                               {"PUBLISH", key, *c.meta}});
    if (!r) {
      log->warn("result backend: cannot store task {}: {}", id, r.error().message);
      return false;
    }
    return true;
  }
};

Worker::Worker(asio::any_io_executor ex, WorkerOptions opts, TaskHandler handler)
    : m_impl(std::make_shared<Impl>(std::move(ex), std::move(opts), std::move(handler))) {}

Worker::~Worker() {
  {
    std::lock_guard lock(m_impl->mu);
    m_impl->stopping = true;
    m_impl->writer_stop = true;
  }
  m_impl->cv.notify_all();
  if (m_impl->consumer.joinable()) {
    m_impl->consumer.join();
  }
  if (m_impl->writer.joinable()) {
    m_impl->writer.join();
  }
}

std::size_t Worker::in_flight() const {
  std::lock_guard lock(m_impl->mu);
  return m_impl->in_flight;
}

void Worker::stop() {
  {
    std::lock_guard lock(m_impl->mu);
    m_impl->stopping = true;
  }
  m_impl->cv.notify_all();
}

asio::awaitable<void> Worker::run(std::chrono::milliseconds drain_timeout) {
  auto self = m_impl;
  auto& s = *self;
  s.consumer = std::thread([self] { self->consume(); });
  s.writer = std::thread([self] { self->write(); });
  asio::steady_timer tick(s.ex);
  auto check = [&s](bool drained) {
    std::lock_guard lock(s.mu);
    return drained ? s.in_flight == 0 : s.stopping;
  };
  while (!check(false)) {
    tick.expires_after(100ms);
    co_await tick.async_wait(asio::use_awaitable);
  }
  s.log->info("stopping: no new tasks; finishing {} in flight", [&] {
    std::lock_guard lock(s.mu);
    return s.in_flight;
  }());
  auto deadline = Clock::now() + drain_timeout;
  while (!check(true) && Clock::now() < deadline) {
    tick.expires_after(50ms);
    co_await tick.async_wait(asio::use_awaitable);
  }
  if (!check(true)) {
    s.log->warn("tasks still unacknowledged after {} s: left for redelivery",
                std::chrono::duration_cast<std::chrono::seconds>(drain_timeout).count());
  }
  {
    std::lock_guard lock(s.mu);
    s.writer_stop = true;
  }
  s.cv.notify_all();
  s.consumer.join();
  s.writer.join();
}

} // namespace pss::celery

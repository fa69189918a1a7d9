#include "celery/worker.hpp"

#include "util/log.hpp"
#include "util/uuid.hpp"

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

constexpr auto k_io_timeout = 5s;       // any Redis call (BRPOP waits 1 s of it)
constexpr auto k_first_backoff = 100ms; // reconnect back-off, doubling...
constexpr auto k_max_backoff = 5s;      // ...to this
constexpr int k_restore_every = 10;     // empty polls between visibility restores (kombu's)

// Frees the restore lock only if it is still ours (redis-py's Lock.release script).
constexpr const char* k_release_script =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

std::string unix_time_now() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%lld.%06lld", static_cast<long long>(us / 1000000),
                static_cast<long long>(us % 1000000));
  return buf;
}

struct Completion {
  std::string task_id;
  std::string delivery_tag;
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
  std::size_t in_flight = 0;
  bool stopping = false;
  bool writer_stop = false;
  std::deque<Completion> completions;
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

  // A connection that works, or none while `give_up` says so. Logs an outage once.
  template <typename Pred>
  std::optional<Redis> connect(const RedisUrl& url, const char* role, Pred give_up) {
    auto backoff = std::chrono::milliseconds(k_first_backoff);
    bool warned = false;
    for (;;) {
      auto c = Redis::connect(url, k_io_timeout);
      if (c) {
        if (warned) {
          log->info("{} connection to {} is back", role, url.describe());
        }
        return std::move(*c);
      }
      if (!warned) {
        log->warn("{}; retrying with back-off", c.error().message);
        warned = true;
      }
      if (pause(backoff, give_up)) {
        return std::nullopt;
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, k_max_backoff);
    }
  }

  // --- the consumer thread ---------------------------------------------------------------

  void consume() {
    auto stop_pred = [this] { return stopping; };
    std::optional<Redis> conn;
    std::string token = uuid4();
    auto lists = priority_lists(opts.queue);
    std::vector<std::string> brpop{"BRPOP"};
    brpop.insert(brpop.end(), lists.begin(), lists.end());
    brpop.push_back("1");
    int empty_polls = k_restore_every;
    for (;;) {
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, 1s, [this] { return stopping || in_flight < opts.concurrency; });
        if (stopping) {
          return;
        }
        if (in_flight >= opts.concurrency) {
          continue; // prefetch: one message per free slot, no more
        }
      }
      if (!conn || conn->broken()) {
        conn = connect(opts.broker, "broker", stop_pred);
        if (!conn) {
          return;
        }
        // As kombu's queue_bind: the binding a Python client would also declare.
        (void)conn->command({"SADD", binding_key(opts.queue), binding_member(opts.queue)});
        log->info("consuming queue '{}' on {} ({} at once)", opts.queue, opts.broker.describe(),
                  opts.concurrency);
      }
      if (empty_polls >= k_restore_every) {
        empty_polls = 0;
        restore_visible(*conn, token);
        if (conn->broken()) {
          continue;
        }
      }
      auto r = conn->command(brpop);
      if (!r) {
        log->warn("broker: {}", r.error().message);
        continue;
      }
      if (r->is_nil() || r->elements.size() != 2) {
        ++empty_polls;
        continue;
      }
      const std::string& raw = r->elements[1].str;
      auto msg = parse_envelope(raw);
      if (!msg) {
        // As Python: an undecodable message is dropped, with no result.
        log->error("dropping a message from '{}' that is not a Celery task: {}", r->elements[0].str,
                   msg.error().message);
        continue;
      }
      register_delivery(conn, *msg);
      {
        std::lock_guard lock(mu);
        ++in_flight;
      }
      asio::post(ex, [self = shared_from_this(), m = std::move(*msg)]() mutable {
        auto task = self->execute(std::move(m));
        asio::co_spawn(self->ex, std::move(task), asio::detached);
      });
    }
  }

  // Records the delivery in kombu's unacked HASH/ZSET, retrying through broker outages: a
  // popped message exists nowhere else.
  // Gives up only when the drain deadline has passed (the broker stayed down through a
  // shutdown): the task is then run anyway, its ack simply finds nothing to remove.
  void register_delivery(std::optional<Redis>& conn, const TaskMessage& m) {
    for (;;) {
      if (conn && !conn->broken()) {
        auto r = conn->transaction(
            {{"ZADD", std::string(k_unacked_index_key), unix_time_now(), m.delivery_tag},
             {"HSET", std::string(k_unacked_key), m.delivery_tag, unacked_value(m)}});
        if (r) {
          return;
        }
        log->warn("broker: cannot register task {}: {}", m.id, r.error().message);
      }
      conn = connect(opts.broker, "broker", [this] { return writer_stop; });
      if (!conn) {
        log->error("task {}: the broker stayed down; running it unregistered", m.id);
        return;
      }
    }
  }

  // kombu's restore_visible: deliveries unacknowledged for longer than the visibility
  // timeout (their worker died) go back to the consuming end of their queue.
  void restore_visible(Redis& conn, const std::string& token) {
    auto lock = conn.command(
        {"SET", std::string(k_unacked_mutex_key), token, "PX",
         std::to_string(std::chrono::milliseconds(k_unacked_mutex_expire).count()), "NX"});
    if (!lock || lock->is_nil()) {
      return; // another consumer is restoring
    }
    auto cutoff = std::chrono::duration<double>(
                      std::chrono::system_clock::now().time_since_epoch() - opts.visibility_timeout)
                      .count();
    char max_score[40];
    std::snprintf(max_score, sizeof max_score, "%.6f", cutoff);
    auto due = conn.command(
        {"ZREVRANGEBYSCORE", std::string(k_unacked_index_key), max_score, "0", "WITHSCORES"});
    if (due && due->type == Reply::Type::array) {
      for (std::size_t i = 0; i + 1 < due->elements.size(); i += 2) {
        restore_one(conn, due->elements[i].str);
        if (conn.broken()) {
          return;
        }
      }
    }
    (void)conn.command({"EVAL", k_release_script, "1", std::string(k_unacked_mutex_key), token});
  }

  void restore_one(Redis& conn, const std::string& tag) {
    if (!conn.command({"WATCH", std::string(k_unacked_key)})) {
      return;
    }
    auto value = conn.command({"HGET", std::string(k_unacked_key), tag});
    if (!value) {
      return;
    }
    std::vector<std::vector<std::string>> tx{{"ZREM", std::string(k_unacked_index_key), tag},
                                             {"HDEL", std::string(k_unacked_key), tag}};
    std::string queue;
    if (!value->is_nil()) {
      auto re = redelivery_from_unacked(value->str);
      if (!re) {
        log->error("dropping unacked delivery {}: {}", tag, re.error().message);
      } else {
        queue = re->queue;
        if (queue.empty()) {
          auto members = conn.command({"SMEMBERS", binding_key(re->exchange)});
          std::vector<std::string> names;
          if (members && members->type == Reply::Type::array) {
            for (const auto& e : members->elements) {
              names.push_back(e.str);
            }
          }
          auto bound = bound_queues(names, re->routing_key);
          if (!bound.empty()) {
            queue = bound.front();
          }
        }
        if (!queue.empty()) {
          tx.push_back({"RPUSH", queue, re->message});
        }
      }
    }
    auto r = conn.transaction(tx);
    if (r && !queue.empty()) {
      log->warn(
          "delivery {} was not acknowledged within {} s (its worker died?): back on '{}'", tag,
          std::chrono::duration_cast<std::chrono::seconds>(opts.visibility_timeout).count(), queue);
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
      completions.push_back({m.id, m.delivery_tag, std::move(out)});
    }
    cv.notify_all();
  }

  // --- the writer thread -------------------------------------------------------------------

  void write() {
    auto give_up = [this] { return writer_stop; };
    std::optional<Redis> backend;
    std::optional<Redis> broker;
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
      if (!backend || backend->broken()) {
        backend = connect(opts.result_backend, "result backend", give_up);
        if (!backend) {
          return;
        }
      }
      if (!broker || broker->broken()) {
        broker = connect(opts.broker, "broker", give_up);
        if (!broker) {
          return;
        }
      }
      if (c.meta && !store(*backend, c)) {
        pause(k_first_backoff, give_up); // then retried (reconnecting if need be)
        continue;
      }
      // Late acknowledgement: only now is the task done.
      auto ack = broker->transaction({{"ZREM", std::string(k_unacked_index_key), c.delivery_tag},
                                      {"HDEL", std::string(k_unacked_key), c.delivery_tag}});
      if (!ack) {
        log->warn("broker: cannot acknowledge task {}: {}", c.task_id, ack.error().message);
        pause(k_first_backoff, give_up);
        continue;
      }
      {
        std::lock_guard lock(mu);
        completions.pop_front();
        --in_flight;
      }
      cv.notify_all();
    }
  }

  bool store(Redis& conn, const Completion& c) {
    std::string key = result_key(c.task_id);
    auto existing = conn.command({"GET", key});
    if (!existing) {
      log->warn("result backend: {}", existing.error().message);
      return false;
    }
    if (!existing->is_nil()) {
      auto meta = parse_result_meta(existing->str);
      if (meta && meta->status == k_success) {
        log->info("task {} already has a SUCCESS result: kept", c.task_id);
        return true; // never overwrite a SUCCESS (a redelivered task)
      }
    }
    auto r = conn.transaction({{"SETEX", key, std::to_string(k_result_expires.count()), *c.meta},
                               {"PUBLISH", key, *c.meta}});
    if (!r) {
      log->warn("result backend: cannot store task {}: {}", c.task_id, r.error().message);
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

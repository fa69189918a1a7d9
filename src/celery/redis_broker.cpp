// The Redis transport, as kombu's: BRPOP over the queue's priority lists, acks emulated with
// the unacked HASH/ZSET, deliveries of dead workers restored after the visibility timeout.
#include "celery/broker.hpp"
#include "util/log.hpp"
#include "util/uuid.hpp"

#include <thread>

namespace pss::celery::detail {

using namespace std::chrono_literals;

namespace {

constexpr auto k_io_timeout = 5s;   // any Redis call (BRPOP waits within it)
constexpr int k_restore_every = 10; // idle seconds / empty polls between visibility restores

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

class RedisConsumer final : public Consumer {
public:
  RedisConsumer(RedisUrl url, ConsumerOptions opts)
      : m_url(std::move(url)), m_opts(std::move(opts)) {
    auto lists = priority_lists(m_opts.queue);
    m_brpop = {"BRPOP"};
    m_brpop.insert(m_brpop.end(), lists.begin(), lists.end());
    m_brpop.emplace_back(); // the timeout, per call
  }

  std::string describe() const override { return m_url.describe(); }

  Result<void> ensure_connected() override {
    if (m_conn && !m_conn->broken()) {
      return {};
    }
    m_conn.reset();
    m_conn = PSS_TRY(Redis::connect(m_url, k_io_timeout));
    // As kombu's queue_bind: the binding a Python client would also declare.
    (void)m_conn->command({"SADD", binding_key(m_opts.queue), binding_member(m_opts.queue)});
    m_log->info("consuming queue '{}' on {} ({} at once)", m_opts.queue, m_url.describe(),
                m_opts.concurrency);
    m_empty_polls = k_restore_every; // restore what a crash left before taking new work
    return {};
  }

  Result<std::optional<TaskMessage>> next(std::chrono::milliseconds wait) override {
    PSS_TRY_VOID(ensure_connected());
    if (m_empty_polls >= k_restore_every) {
      m_empty_polls = 0;
      restore_visible();
      PSS_TRY_VOID(ensure_connected());
    }
    // BRPOP takes fractional seconds (Redis >= 6); at least 10 ms, so 0 never means forever.
    char timeout[32];
    std::snprintf(timeout, sizeof timeout, "%.3f",
                  std::max<double>(0.01, static_cast<double>(wait.count()) / 1000.0));
    m_brpop.back() = timeout;
    auto r = m_conn->command(m_brpop);
    if (!r) {
      return r.error();
    }
    if (r->is_nil() || r->elements.size() != 2) {
      ++m_empty_polls;
      return std::optional<TaskMessage>();
    }
    auto msg = parse_envelope(r->elements[1].str);
    if (!msg) {
      // As Python: an undecodable message is dropped, with no result.
      m_log->error("dropping a message from '{}' that is not a Celery task: {}", r->elements[0].str,
                   msg.error().message);
      return std::optional<TaskMessage>();
    }
    register_delivery(*msg);
    return std::optional<TaskMessage>(std::move(*msg));
  }

  Result<void> ack(const TaskMessage& m) override {
    PSS_TRY_VOID(ensure_connected());
    auto r = m_conn->transaction({{"ZREM", std::string(k_unacked_index_key), m.delivery_tag},
                                  {"HDEL", std::string(k_unacked_key), m.delivery_tag}});
    if (!r) {
      return r.error();
    }
    return {};
  }

  Result<void> reject(const TaskMessage& m, bool requeue) override {
    if (!requeue) {
      return ack(m);
    }
    PSS_TRY_VOID(ensure_connected());
    restore_one(m.delivery_tag, "LPUSH"); // kombu's reject(requeue): leftmost, runs last
    if (m_conn->broken()) {
      return make_error("Redis broker " + m_url.describe() + ": lost while requeueing");
    }
    return {};
  }

  void idle() override {
    if (++m_idle_calls < k_restore_every || !ensure_connected()) {
      return;
    }
    m_idle_calls = 0;
    restore_visible();
  }

private:
  // Records the delivery in kombu's unacked HASH/ZSET, retrying through broker outages: a
  // popped message exists nowhere else. Gives up only when told to (the drain deadline has
  // passed with the broker still down): the task is then run anyway, its ack simply finds
  // nothing to remove.
  void register_delivery(const TaskMessage& m) {
    auto backoff = 100ms;
    for (;;) {
      if (ensure_connected()) {
        auto r = m_conn->transaction(
            {{"ZADD", std::string(k_unacked_index_key), unix_time_now(), m.delivery_tag},
             {"HSET", std::string(k_unacked_key), m.delivery_tag, unacked_value(m)}});
        if (r) {
          return;
        }
        m_log->warn("broker: cannot register task {}: {}", m.id, r.error().message);
      }
      if (m_opts.give_up()) {
        m_log->error("task {}: the broker stayed down; running it unregistered", m.id);
        return;
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
    }
  }

  // kombu's restore_visible: deliveries unacknowledged for longer than the visibility
  // timeout (their worker died) go back to the consuming end of their queue.
  void restore_visible() {
    auto lock = m_conn->command(
        {"SET", std::string(k_unacked_mutex_key), m_token, "PX",
         std::to_string(std::chrono::milliseconds(k_unacked_mutex_expire).count()), "NX"});
    if (!lock || lock->is_nil()) {
      return; // another consumer is restoring
    }
    auto cutoff =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch() -
                                      m_opts.visibility_timeout)
            .count();
    char max_score[40];
    std::snprintf(max_score, sizeof max_score, "%.6f", cutoff);
    auto due = m_conn->command(
        {"ZREVRANGEBYSCORE", std::string(k_unacked_index_key), max_score, "0", "WITHSCORES"});
    if (due && due->type == Reply::Type::array) {
      for (std::size_t i = 0; i + 1 < due->elements.size(); i += 2) {
        if (restore_one(due->elements[i].str, "RPUSH")) {
          m_log->warn(
              "delivery {} was not acknowledged within {} s (its worker died?): back on its "
              "queue",
              due->elements[i].str,
              std::chrono::duration_cast<std::chrono::seconds>(m_opts.visibility_timeout).count());
        }
        if (m_conn->broken()) {
          return;
        }
      }
    }
    (void)m_conn->command(
        {"EVAL", k_release_script, "1", std::string(k_unacked_mutex_key), m_token});
  }

  // Moves one unacked delivery back to its queue (`push`: RPUSH runs it next, LPUSH last).
  // True if it was put back.
  bool restore_one(const std::string& tag, const char* push) {
    if (!m_conn->command({"WATCH", std::string(k_unacked_key)})) {
      return false;
    }
    auto value = m_conn->command({"HGET", std::string(k_unacked_key), tag});
    if (!value) {
      return false;
    }
    std::vector<std::vector<std::string>> tx{{"ZREM", std::string(k_unacked_index_key), tag},
                                             {"HDEL", std::string(k_unacked_key), tag}};
    std::string queue;
    if (!value->is_nil()) {
      auto re = redelivery_from_unacked(value->str);
      if (!re) {
        m_log->error("dropping unacked delivery {}: {}", tag, re.error().message);
      } else {
        queue = re->queue;
        if (queue.empty()) {
          auto members = m_conn->command({"SMEMBERS", binding_key(re->exchange)});
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
          tx.push_back({push, queue, re->message});
        }
      }
    }
    auto r = m_conn->transaction(tx);
    return r && !queue.empty();
  }

  RedisUrl m_url;
  ConsumerOptions m_opts;
  std::optional<Redis> m_conn;
  std::vector<std::string> m_brpop;
  std::string m_token = uuid4(); // ours in the restore lock
  int m_empty_polls = k_restore_every;
  int m_idle_calls = 0;
  std::shared_ptr<spdlog::logger> m_log = log::get("worker");
};

class RedisPublisher final : public Publisher {
public:
  explicit RedisPublisher(RedisUrl url) : m_url(std::move(url)) {}

  Result<void> ensure_connected() override {
    if (m_conn && !m_conn->broken()) {
      return {};
    }
    m_conn.reset();
    m_conn = PSS_TRY(Redis::connect(m_url, k_io_timeout));
    m_bound.clear();
    return {};
  }

  Result<void> publish(const std::string& task_id, const std::string& task_name, const Json& args,
                       const Json& kwargs, const SendOptions& opts) override {
    PSS_TRY_VOID(ensure_connected());
    if (m_bound != opts.queue) {
      // kombu's maybe_declare: the binding a consumer restores through.
      (void)m_conn->command({"SADD", binding_key(opts.queue), binding_member(opts.queue)});
      m_bound = opts.queue;
    }
    std::string envelope = make_envelope(task_id, task_name, args, kwargs, opts);
    auto r = m_conn->command({"LPUSH", list_for_priority(opts.queue, opts.priority), envelope});
    if (!r) {
      return r.error();
    }
    return {};
  }

private:
  RedisUrl m_url;
  std::optional<Redis> m_conn;
  std::string m_bound;
};

} // namespace

std::unique_ptr<Consumer> make_redis_consumer(const RedisUrl& url, ConsumerOptions opts) {
  return std::make_unique<RedisConsumer>(url, std::move(opts));
}

std::unique_ptr<Publisher> make_redis_publisher(const RedisUrl& url) {
  return std::make_unique<RedisPublisher>(url);
}

} // namespace pss::celery::detail

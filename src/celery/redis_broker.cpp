// The Redis transport, as kombu's: BRPOP over the queue's priority lists, acks emulated with
// the unacked HASH/ZSET, deliveries of dead workers restored after the visibility timeout.
// Unlike kombu, a live consumer keeps moving its own deliveries' time in the ZSET to now while
// they run, so that no restore (ours or a Python worker's) mistakes a long task for a dead
// worker's and runs it twice; a dead worker stops doing so, and its deliveries come back.
#include "celery/broker.hpp"
#include "util/log.hpp"
#include "util/uuid.hpp"

#include <map>
#include <thread>

namespace pss::celery::detail {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto k_io_timeout = 5s;           // any Redis call (BRPOP waits within it)
constexpr auto k_restore_every = 10s;       // between visibility restores (kombu: every 10th poll)
constexpr int k_refreshes_per_timeout = 4;  // our deliveries' time is moved every timeout / 4...
constexpr auto k_min_refresh_every = 100ms; // ...at most this often
constexpr auto k_max_idle_every = 1s;       // idle() wanted at least this often

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
    // Our deliveries' time first (a reconnection may have come late), then restore what a
    // crash left before taking new work.
    m_next_refresh = Clock::time_point::min();
    m_next_restore = Clock::time_point::min();
    return {};
  }

  Result<std::optional<TaskMessage>> next(std::chrono::milliseconds wait) override {
    PSS_TRY_VOID(ensure_connected());
    maintain();
    PSS_TRY_VOID(ensure_connected());
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
      return std::optional<TaskMessage>();
    }
    auto msg = parse_envelope(r->elements[1].str);
    if (!msg) {
      // As Python: an undecodable message is dropped, with no result.
      m_log->error("dropping a message from '{}' that is not a Celery task: {}", r->elements[0].str,
                   msg.error().message);
      return std::optional<TaskMessage>();
    }
    if (register_delivery(*msg)) {
      m_running.emplace(msg->delivery_tag, msg->id);
    }
    return std::optional<TaskMessage>(std::move(*msg));
  }

  Result<void> ack(const TaskMessage& m) override {
    PSS_TRY_VOID(ensure_connected());
    auto r = m_conn->transaction({{"ZREM", std::string(k_unacked_index_key), m.delivery_tag},
                                  {"HDEL", std::string(k_unacked_key), m.delivery_tag}});
    if (!r) {
      return r.error();
    }
    m_running.erase(m.delivery_tag);
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
    m_running.erase(m.delivery_tag);
    return {};
  }

  void idle() override {
    if (ensure_connected()) {
      maintain();
    }
  }

  std::chrono::milliseconds idle_every() const override {
    return std::min<std::chrono::milliseconds>(k_max_idle_every, refresh_every());
  }

private:
  std::chrono::milliseconds refresh_every() const {
    return std::max<std::chrono::milliseconds>(k_min_refresh_every,
                                               m_opts.visibility_timeout / k_refreshes_per_timeout);
  }

  // The periodic work of next() and idle(), connected: our deliveries' time, then (less
  // often) the restore of others'. Each step is one or a few bounded Redis calls.
  void maintain() {
    auto now = Clock::now();
    if (now >= m_next_refresh) {
      m_next_refresh = now + refresh_every();
      refresh_visibility();
      if (m_conn->broken()) {
        return;
      }
    }
    if (now >= m_next_restore) {
      m_next_restore = now + k_restore_every;
      restore_visible();
    }
  }

  // A restore takes back every delivery whose time in the unacked_index ZSET is older than
  // now - visibility_timeout (kombu's QoS.restore_visible: ZREVRANGEBYSCORE from that
  // ceiling); the time is the one kombu writes, Unix seconds. So while our tasks run, their
  // entries get the current time, one transaction for all of them. XX: an entry acknowledged
  // meanwhile, or already restored by another worker (this one lost the broker for longer
  // than the timeout), is not written again.
  void refresh_visibility() {
    if (m_running.empty()) {
      return;
    }
    std::string now = unix_time_now();
    std::vector<std::vector<std::string>> tx;
    std::vector<std::map<std::string, std::string>::iterator> order;
    for (auto it = m_running.begin(); it != m_running.end(); ++it) {
      tx.push_back({"ZADD", std::string(k_unacked_index_key), "XX", "CH", now, it->first});
      order.push_back(it);
    }
    auto r = m_conn->transaction(tx);
    if (!r) {
      m_log->warn("broker: cannot extend the visibility of {} tasks in flight: {}",
                  m_running.size(), r.error().message);
      return; // retried at the next turn, reconnected
    }
    for (std::size_t i = 0; i < order.size() && i < r->size(); ++i) {
      if ((*r)[i].type == Reply::Type::integer && (*r)[i].integer == 0) {
        m_log->warn("task {}: its delivery was taken back from this worker meanwhile (the broker "
                    "was out of reach for longer than the visibility timeout?): it may run twice",
                    order[i]->second);
        m_running.erase(order[i]);
      }
    }
    m_log->debug("visibility of the tasks in flight ({}) extended to {}", m_running.size(), now);
  }

  // Records the delivery in kombu's unacked HASH/ZSET, retrying through broker outages: a
  // popped message exists nowhere else. Gives up only when told to (the drain deadline has
  // passed with the broker still down): the task is then run anyway, its ack simply finds
  // nothing to remove. True if recorded.
  bool register_delivery(const TaskMessage& m) {
    auto backoff = 100ms;
    for (;;) {
      if (ensure_connected()) {
        auto r = m_conn->transaction(
            {{"ZADD", std::string(k_unacked_index_key), unix_time_now(), m.delivery_tag},
             {"HSET", std::string(k_unacked_key), m.delivery_tag, unacked_value(m)}});
        if (r) {
          return true;
        }
        m_log->warn("broker: cannot register task {}: {}", m.id, r.error().message);
      }
      if (m_opts.give_up()) {
        m_log->error("task {}: the broker stayed down; running it unregistered", m.id);
        return false;
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
    m_log->debug("visibility restore: unacknowledged deliveries older than {} are due", max_score);
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
  std::string m_token = uuid4();                // ours in the restore lock
  std::map<std::string, std::string> m_running; // our registered deliveries: tag -> task id
  Clock::time_point m_next_refresh = Clock::time_point::min();
  Clock::time_point m_next_restore = Clock::time_point::min();
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

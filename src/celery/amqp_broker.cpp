// The AMQP transport (RabbitMQ), as Celery's py-amqp one: the queue declared as kombu declares
// it, basic.qos prefetch of one per slot, basic.ack after the result is stored, basic.reject
// to give a message back. A lost connection needs no bookkeeping: the broker requeues every
// unacknowledged delivery of a closed channel.
#include "celery/broker.hpp"
#include "util/log.hpp"

#include <charconv>
#include <deque>
#include <fmt/format.h>
#include <limits>

namespace pss::celery::detail {

using namespace std::chrono_literals;

namespace {

constexpr auto k_io_timeout = 5s;
constexpr int k_heartbeat_s = 30; // the broker drops us after two missed (60 s)

class AmqpConsumer final : public Consumer {
public:
  AmqpConsumer(AmqpUrl url, ConsumerOptions opts)
      : m_url(std::move(url)), m_opts(std::move(opts)) {}

  std::string describe() const override { return m_url.describe(); }

  Result<void> ensure_connected() override {
    if (m_conn && !m_conn->broken()) {
      return {};
    }
    if (m_conn) {
      // Every delivery of the old channel is back on the queue; those buffered go with it.
      m_buffered.clear();
      m_conn.reset();
    }
    auto c = PSS_TRY(Amqp::connect(m_url, k_io_timeout, k_heartbeat_s));
    PSS_TRY_VOID(c.declare_queue(m_opts.queue));
    const auto prefetch = static_cast<std::uint16_t>(
        std::min<std::size_t>(m_opts.concurrency, std::numeric_limits<std::uint16_t>::max()));
    PSS_TRY_VOID(c.consume(m_opts.queue, prefetch));
    m_conn = std::move(c);
    ++m_generation;
    m_log->info("consuming queue '{}' on {} ({} at once)", m_opts.queue, m_url.describe(),
                m_opts.concurrency);
    return {};
  }

  Result<std::optional<TaskMessage>> next(std::chrono::milliseconds wait) override {
    PSS_TRY_VOID(ensure_connected());
    if (m_buffered.empty()) {
      PSS_TRY_VOID(receive(wait));
    }
    if (m_buffered.empty()) {
      return std::optional<TaskMessage>();
    }
    TaskMessage m = std::move(m_buffered.front());
    m_buffered.pop_front();
    return std::optional<TaskMessage>(std::move(m));
  }

  Result<void> ack(const TaskMessage& m) override { return settle(m, "ack", false); }

  Result<void> reject(const TaskMessage& m, bool requeue) override {
    return settle(m, requeue ? "requeue" : "drop", requeue);
  }

  void idle() override {
    // Reading services the heartbeats; a delivery that comes is kept for the next free slot.
    if (m_conn && !m_conn->broken()) {
      if (auto r = receive(0ms); !r) {
        m_log->warn("{}", r.error().message);
      }
    }
  }

private:
  // One read from the connection into m_buffered.
  Result<void> receive(std::chrono::milliseconds wait) {
    auto got = m_conn->next(wait);
    if (!got) {
      return got.error();
    }
    if (!*got) {
      return {};
    }
    AmqpReceived& r = **got;
    r.delivery.tag = fmt::format("{}.{}", m_generation, r.tag);
    const std::string routing_key = r.delivery.routing_key;
    auto msg = parse_amqp_message(r.message, std::move(r.delivery));
    if (!msg) {
      // As Python: an undecodable message is dropped (rejected without requeue), no result.
      m_log->error("dropping a message from '{}' that is not a Celery task: {}", routing_key,
                   msg.error().message);
      return m_conn->reject(r.tag, false);
    }
    m_buffered.push_back(std::move(*msg));
    return {};
  }

  // Acks or rejects on the channel that delivered the message. A delivery of an earlier
  // connection needs nothing: the broker requeued it when that connection closed.
  Result<void> settle(const TaskMessage& m, std::string_view what, bool requeue) {
    std::uint64_t generation = 0;
    std::uint64_t tag = 0;
    const std::string& t = m.delivery_tag;
    auto dot = t.find('.');
    if (dot == std::string::npos ||
        std::from_chars(t.data(), t.data() + dot, generation).ec != std::errc() ||
        std::from_chars(t.data() + dot + 1, t.data() + t.size(), tag).ec != std::errc()) {
      return make_error(fmt::format("task {}: '{}' is not an AMQP delivery tag", m.id, t));
    }
    if (!m_conn || m_conn->broken() || generation != m_generation) {
      m_log->info("task {}: its connection closed before the {}; the broker redelivers it", m.id,
                  what);
      return {};
    }
    if (what == "ack") {
      return m_conn->ack(tag);
    }
    return m_conn->reject(tag, requeue);
  }

  AmqpUrl m_url;
  ConsumerOptions m_opts;
  std::optional<Amqp> m_conn;
  std::uint64_t m_generation = 0; // of m_conn: delivery tags count from 1 on each channel
  std::deque<TaskMessage> m_buffered;
  std::shared_ptr<spdlog::logger> m_log = log::get("worker");
};

class AmqpPublisher final : public Publisher {
public:
  explicit AmqpPublisher(AmqpUrl url) : m_url(std::move(url)) {}

  Result<void> ensure_connected() override {
    if (m_conn && !m_conn->broken()) {
      return {};
    }
    m_conn.reset();
    // No heartbeat: a client that publishes, then waits on the result backend for a long
    // time, must not be dropped for silence; a dead connection shows on the next publish.
    auto c = PSS_TRY(Amqp::connect(m_url, k_io_timeout, 0));
    // Confirms: a task counts as sent once RabbitMQ has it, not once it left our socket.
    PSS_TRY_VOID(c.confirm_select());
    m_conn = std::move(c);
    m_declared.clear();
    return {};
  }

  Result<void> publish(const std::string& task_id, const std::string& task_name, const Json& args,
                       const Json& kwargs, const SendOptions& opts) override {
    PSS_TRY_VOID(ensure_connected());
    if (m_declared != opts.queue) {
      PSS_TRY_VOID(m_conn->declare_queue(opts.queue)); // kombu's maybe_declare
      m_declared = opts.queue;
    }
    return m_conn->publish(opts.queue, make_amqp_message(task_id, task_name, args, kwargs, opts));
  }

private:
  AmqpUrl m_url;
  std::optional<Amqp> m_conn;
  std::string m_declared;
};

} // namespace

std::unique_ptr<Consumer> make_amqp_consumer(const AmqpUrl& url, ConsumerOptions opts) {
  return std::make_unique<AmqpConsumer>(url, std::move(opts));
}

std::unique_ptr<Publisher> make_amqp_publisher(const AmqpUrl& url) {
  return std::make_unique<AmqpPublisher>(url);
}

} // namespace pss::celery::detail

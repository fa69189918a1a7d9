// The Celery broker behind the worker and the client: one interface, two transports (Redis
// lists with kombu's ack emulation; AMQP 0-9-1 with native acks). The task messages
// (envelope.hpp) and results (result_meta.hpp) are shared; what differs is how a message
// travels and is acknowledged.
// Each object is used by one thread; calls block, each bounded by a timeout.
#pragma once

#include "celery/amqp.hpp"
#include "celery/kombu_redis.hpp"
#include "celery/redis.hpp"
#include "celery/result_meta.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace pss::celery {

// redis://…, unix://… (Redis) or amqp://… (RabbitMQ).
using BrokerUrl = std::variant<RedisUrl, AmqpUrl>;
// Error names the URL and what is wrong.
Result<BrokerUrl> parse_broker_url(std::string_view url);
std::string describe(const BrokerUrl& url); // without the password

// Takes tasks off a queue and settles them. Owned by one thread (AMQP acks must go out on the
// channel that received the delivery). A consumer reconnects by itself on the next call after a
// failure; what was delivered on a lost connection is redelivered by the broker (AMQP) or
// restored after the visibility timeout (Redis).
class Consumer {
public:
  virtual ~Consumer() = default;
  // Connects if need be; Error while the broker cannot be reached.
  virtual Result<void> ensure_connected() = 0;
  // The next task within `wait`, or nullopt. Call only with a free slot: a Redis message is
  // popped (and registered as unacked) here; AMQP prefetches by itself (basic.qos).
  // A message that is not a Celery task is dropped here, logged, and nullopt returned.
  virtual Result<std::optional<TaskMessage>> next(std::chrono::milliseconds wait) = 0;
  // The task is done (its result stored): forget the message for good.
  virtual Result<void> ack(const TaskMessage& m) = 0;
  // Gives the message back to its queue to be run again (requeue) or drops it.
  virtual Result<void> reject(const TaskMessage& m, bool requeue) = 0;
  // Called at least every idle_every() while no task is fetched (all slots busy, or
  // stopping): keeps the connection alive (AMQP heartbeats) and does periodic work (Redis:
  // extends the visibility of the deliveries in flight, restores those of dead workers).
  // next() does the same work on its way.
  virtual void idle() = 0;
  virtual std::chrono::milliseconds idle_every() const { return std::chrono::seconds(1); }
  virtual std::string describe() const = 0;
};

struct ConsumerOptions {
  std::string queue = "celery";
  std::size_t concurrency = 1;
  std::chrono::milliseconds visibility_timeout = k_visibility_timeout; // Redis only
  // Consulted while retrying a Redis bookkeeping write through an outage: true gives up.
  std::function<bool()> give_up = [] { return false; };
};
std::unique_ptr<Consumer> make_consumer(const BrokerUrl& url, ConsumerOptions opts);

// Sends tasks as Python's send_task() does on that transport (declaring the queue first).
class Publisher {
public:
  virtual ~Publisher() = default;
  // Connects if need be; Error while the broker cannot be reached.
  virtual Result<void> ensure_connected() = 0;
  // Publishes one task; Error leaves the connection to be re-made by the next call.
  virtual Result<void> publish(const std::string& task_id, const std::string& task_name,
                               const Json& args, const Json& kwargs, const SendOptions& opts) = 0;
};
std::unique_ptr<Publisher> make_publisher(const BrokerUrl& url);

} // namespace pss::celery

namespace pss::celery::detail {
// The transports (redis_broker.cpp, amqp_broker.cpp); make_consumer()/make_publisher() pick.
std::unique_ptr<Consumer> make_redis_consumer(const RedisUrl& url, ConsumerOptions opts);
std::unique_ptr<Publisher> make_redis_publisher(const RedisUrl& url);
std::unique_ptr<Consumer> make_amqp_consumer(const AmqpUrl& url, ConsumerOptions opts);
std::unique_ptr<Publisher> make_amqp_publisher(const AmqpUrl& url);
} // namespace pss::celery::detail

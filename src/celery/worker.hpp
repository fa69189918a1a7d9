// A Celery worker on a Redis or AMQP broker (broker.hpp), interoperable with Python Celery 5.2
// (docs/celery.md §4, §8): it takes messages only when a slot is free (prefetch one per slot), runs
// each on the I/O executor, stores the result in Redis (SETEX + PUBLISH in one transaction, never
// over a SUCCESS) and only then acknowledges it (late ack). A crashed worker's deliveries come
// back: AMQP requeues them when its connection closes; on Redis, a live worker keeps moving
// its deliveries' time forward while they run, and those left behind for longer than the
// visibility timeout (their worker died) are restored by any worker.
// Broker and result-backend I/O is blocking, on two threads of its own (consume and
// acknowledge, on one connection as AMQP requires; store results), each reconnecting with
// back-off: a lost broker delays work, it never loses a task.
#pragma once

#include "celery/broker.hpp"
#include "celery/kombu_redis.hpp"
#include "celery/result_meta.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace pss::celery {

struct WorkerOptions {
  BrokerUrl broker;
  RedisUrl result_backend; // the broker itself when that is Redis
  std::string queue = "celery";
  std::size_t concurrency = 1;
  std::chrono::milliseconds visibility_timeout = k_visibility_timeout; // Redis only
  std::string nodename; // for logs: "pssupervise@host"
};

// What a task's run leaves to store: a result-backend value, or nothing (ignore_result, or
// a message dropped as undecodable).
using TaskOutcome = std::optional<std::string>;
// Runs one task on the executor; must not throw (a failure is a FAILURE value).
using TaskHandler = std::function<boost::asio::awaitable<TaskOutcome>(const TaskMessage&)>;

class Worker {
public:
  Worker(boost::asio::any_io_executor ex, WorkerOptions opts, TaskHandler handler);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Consumes until stop(), then finishes the tasks in flight and stores their results.
  // Returns once all of them are acknowledged (or, with the broker down, after
  // `drain_timeout`: they are then left unacknowledged and will be redelivered).
  boost::asio::awaitable<void> run(std::chrono::milliseconds drain_timeout);
  // Stops taking tasks (from any thread, e.g. a signal handler on the executor).
  void stop();
  // Tasks received and not yet acknowledged.
  std::size_t in_flight() const;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::celery

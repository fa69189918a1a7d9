// A Celery worker on a Redis broker, interoperable with Python Celery 5.2 (WIRE.md): it pops
// messages only when a slot is free (prefetch one per slot), registers each in kombu's
// unacked HASH/ZSET, runs it on the I/O executor, stores the result (SETEX + PUBLISH in one
// transaction, never over a SUCCESS) and only then acknowledges it (late ack). It restores
// deliveries left unacknowledged past the visibility timeout (a crashed worker's) itself.
// Redis I/O is blocking hiredis on two threads of its own (consume; store and ack), each
// reconnecting with back-off: a lost broker delays work, it never loses a task.
#pragma once

#include "celery/protocol.hpp"
#include "celery/redis.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace pss::celery {

struct WorkerOptions {
  RedisUrl broker;
  RedisUrl result_backend; // usually the broker
  std::string queue = "celery";
  std::size_t concurrency = 1;
  std::chrono::milliseconds visibility_timeout = k_visibility_timeout;
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

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

} // namespace pss::celery

// A Celery client, as Python's send_task() + AsyncResult.get(): subscribes to the results'
// channels first (Redis result backend), publishes the tasks (Redis or AMQP broker), reads
// results already stored, then waits for the PUBLISHed ones. Reconnects (re-publishing,
// re-subscribing, re-reading) through outages.
#pragma once

#include "celery/broker.hpp"
#include "celery/result_meta.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace pss::celery {

struct ClientOptions {
  BrokerUrl broker;
  RedisUrl result_backend;
  std::string queue = "celery";
  std::string task_name;
  std::chrono::milliseconds wait_timeout{std::chrono::minutes(10)}; // per task, from sending
  bool wait = true; // false: publish only (results are still stored by the worker)
  // Set (from any thread): stop waiting; the tasks not answered yet get an error.
  const std::atomic<bool>* cancel = nullptr;
};

struct TaskCall {
  Json args = Json::array();
  Json kwargs = Json::object();
  std::optional<TimePoint> expires;
};

// Calls on_sent(i, task_id) as task i is published and, when waiting, on_result(i, meta or
// why not) once per task. Error only if publishing itself fails for good.
Result<void> call_tasks(const ClientOptions& opts, const std::vector<TaskCall>& calls,
                        const std::function<void(std::size_t, const std::string&)>& on_sent,
                        const std::function<void(std::size_t, Result<ResultMeta>)>& on_result);

} // namespace pss::celery

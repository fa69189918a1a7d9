// The `celery` backend: each job is a "pssupervise.analyze" task per engine, sent to the queue
// named after the engine (or one queue for all) and answered by `pssupervise worker`s, here or
// on other hosts. The client blocks (hiredis, librabbitmq), so it runs on threads of its own:
// the caller's executor never waits on the network.
#pragma once

#include "artifact/fetch.hpp"
#include "backend/backend.hpp"
#include "celery/client.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pss::backend {

struct CeleryUrls {
  celery::BrokerUrl broker;
  celery::RedisUrl result_backend;
};
// The broker and the result backend from options, else $PSS_BROKER_URL / $PSS_RESULT_BACKEND,
// else redis://127.0.0.1:6379/0 (the result backend: the broker, if it is Redis). Throws
// pss::Fatal naming the option or variable that is wrong.
CeleryUrls celery_urls(const std::string& broker_option, const std::string& backend_option);

struct CeleryOptions {
  std::string broker_url;            // as given; resolved by celery_urls()
  std::string result_backend_url;    // likewise
  std::vector<std::string> engines;  // each one's tasks go to the queue of its name,
  std::string queue;                 // unless this one is given
  std::filesystem::path engines_dir; // manifests, if here, name products and vendors
  std::chrono::milliseconds wait_timeout{std::chrono::minutes(10)}; // per task, from sending
  // false: tasks are published and not waited for; run() gives no result, only on_sent.
  bool wait = true;
  // Each task as it is published: the job's input, the queue, the task id.
  std::function<void(const std::string&, const std::string&, const std::string&)> on_sent;
  // Local inputs are read here to make their bounties: a path or file:// becomes a file://
  // URI (the worker must see the same file), stdin and data: travel as data: URIs.
  artifact::FetchOptions fetch;
};

class CeleryBackend final : public Backend {
public:
  explicit CeleryBackend(CeleryOptions opts);
  ~CeleryBackend() override;

  const std::vector<EngineInfo>& engines() const override;
  boost::asio::awaitable<void> start() override; // nothing to start: workers run elsewhere
  // Every job's tasks at once, one engine after the other; a job's result once all its
  // engines answered. Throws pss::Fatal when the broker refuses the tasks for good.
  boost::asio::awaitable<void> run(std::vector<Job> jobs, ResultSink sink) override;
  // One bounty: its tasks wait until its expiration at most.
  boost::asio::awaitable<JobResult> run_one(Job job) override;
  void cancel() override; // stops waiting: what is not answered yet is `unknown`
  boost::asio::awaitable<void> stop() override;
  bool scans_here() const override { return false; }

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// One engine's Analysis from a task's result (or from why there is none): a worker that runs
// several engines answers {engine: Analysis}; a failure or an unreadable answer is `unknown`
// with the reason (and the engine's product and vendor, the bounty's bid).
model::Analysis analysis_from_task_result(const EngineInfo& engine, const model::Bounty& bounty,
                                          const Result<celery::ResultMeta>& meta);

} // namespace pss::backend

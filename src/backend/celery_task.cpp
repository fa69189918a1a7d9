#include "backend/celery_task.hpp"

#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pss::backend {

namespace asio = boost::asio;

asio::awaitable<celery::TaskOutcome> run_task(Backend& backend, const celery::TaskMessage& m) {
  auto log = log::get("worker");
  auto now = std::chrono::system_clock::now();
  if (m.task != k_analyze_task) {
    log->error("task {}: unknown task name '{}' (this worker runs {})", m.id, m.task,
               k_analyze_task);
    co_return celery::not_registered_meta(m.id, m.task);
  }
  if (m.expires && *m.expires <= now) {
    log->warn("task {} expired at {}: revoked", m.id, celery::to_isoformat(*m.expires));
    co_return celery::revoked_meta(m.id, "expired");
  }
  if (m.eta && *m.eta > now) { // held in its slot until then, as Python holds it
    asio::steady_timer t(
        co_await asio::this_coro::executor,
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(*m.eta - now));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto invalid = [&](const std::string& why) -> celery::TaskOutcome {
    log->error("task {}: {}", m.id, why);
    return celery::failure_meta(m.id, "ValueError", "builtins", celery::Json::array({why}), "");
  };
  if (!m.args.is_array() || m.args.size() != 1) {
    co_return invalid("pssupervise.analyze takes one argument, the bounty; got " +
                      std::to_string(m.args.is_array() ? m.args.size() : 0));
  }
  auto bounty = model::bounty_from_json(nlohmann::json(m.args[0]));
  if (!bounty) {
    co_return invalid("invalid bounty: " + bounty.error().message);
  }
  Job job;
  job.input = bounty->artifact_uri;
  job.artifact_type = bounty->artifact_type;
  job.bounty = std::move(*bounty);
  auto run = backend.run_one(std::move(job));
  JobResult r = co_await std::move(run);
  celery::Json result;
  if (backend.engines().size() == 1 && r.analyses.size() == 1) {
    result = model::to_json(r.analyses.front().analysis);
  } else {
    result = celery::Json::object();
    for (const auto& ea : r.analyses) {
      result[ea.engine] = model::to_json(ea.analysis);
    }
  }
  for (const auto& ea : r.analyses) {
    log->info("task {}: {} {} {}", m.id, ea.engine, model::to_string(ea.analysis.result),
              ea.analysis.result_name.value_or(ea.analysis.error.value_or("")));
  }
  if (m.ignore_result) {
    co_return std::nullopt;
  }
  co_return celery::success_meta(m.id, result);
}

} // namespace pss::backend

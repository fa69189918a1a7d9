// The one task a pssupervise worker runs: "pssupervise.analyze", args [bounty]. Its return
// value is the Analysis (the CLI's JSON form) of the worker's engine, or {engine: Analysis}
// when it runs several. A bounty that cannot be read is a FAILURE (ValueError) that the
// client's get() raises; a scan that fails is an `unknown` Analysis, a SUCCESS: an answer.
#pragma once

#include "backend/local.hpp"
#include "celery/worker.hpp"

#include <string_view>

namespace pss::celery {

inline constexpr std::string_view k_analyze_task = "pssupervise.analyze";

// The worker's TaskHandler: also answers unknown task names (NotRegistered) and expired
// tasks (REVOKED "expired"), and waits for an `eta`.
boost::asio::awaitable<TaskOutcome> run_task(backend::LocalBackend& backend,
                                             std::size_t engine_count, const TaskMessage& m);

} // namespace pss::celery

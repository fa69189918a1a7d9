// The body of the one task a pssupervise worker runs (Celery is only its transport):
// "pssupervise.analyze", args [bounty]. Its return value is the Analysis (the CLI's JSON form) of
// the worker's engine, or {engine: Analysis} when it runs several. A bounty that cannot be read is
// a FAILURE (ValueError) that the client's get() raises; a scan that fails is an `unknown`
// Analysis, a SUCCESS: an answer.
#pragma once

#include "backend/backend.hpp"
#include "celery/worker.hpp"

#include <string_view>

namespace pss::backend {

inline constexpr std::string_view k_analyze_task = "pssupervise.analyze";

// The worker's TaskHandler: also answers unknown task names (NotRegistered) and expired
// tasks (REVOKED "expired"), and waits for an `eta`.
// Scans through `backend`, whatever it is.
boost::asio::awaitable<celery::TaskOutcome> run_task(Backend& backend,
                                                     const celery::TaskMessage& m);

} // namespace pss::backend

// `analyze --backend celery`: the bounties go to Celery workers through the broker (one
// queue per engine, named after it); their answers are printed as the local backend prints.
#pragma once

#include "artifact/fetch.hpp"
#include "backend/callbacks.hpp"
#include "backend/job.hpp"
#include "cli/analyze.hpp"
#include "cli/printer.hpp"

#include <vector>

namespace pss::cli {

int run_celery_analyze(const GlobalOptions& global, const AnalyzeOptions& opts,
                       std::vector<backend::Job> jobs, const artifact::FetchOptions& fetch,
                       Printer& printer, backend::Callbacks& callbacks);

} // namespace pss::cli

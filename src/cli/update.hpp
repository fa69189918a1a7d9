// `pssupervise [--engine …] update`: each engine's updater, then a reload that proves the new
// definitions load (the running services take them on SIGHUP or --update-interval).
#pragma once

#include "cli/options.hpp"

namespace pss::cli {

// 0: every engine updated; 1: one failed (its old definitions stay); 2: an engine without
// an updater or that cannot start.
int run_update(const GlobalOptions& global);

} // namespace pss::cli

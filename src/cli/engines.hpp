// `pssupervise engines`: the engines found, their driver, product and categories.
#pragma once

#include "cli/options.hpp"

namespace pss::cli {

int run_engines(const GlobalOptions& global);

} // namespace pss::cli

// The global cache options (--cache, --cache-ttl, --rescan) as the backends take them, and
// as a `process` backend passes them on to its workers.
#pragma once

#include "backend/cached.hpp"
#include "cli/options.hpp"
#include "util/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::cli {

// "90", "90s", "15m", "12h", "7d" → seconds (at least 1). Error names the text.
Result<std::chrono::seconds> parse_duration(std::string_view text);

// nullopt for `--cache off`. Error: a bad --cache-ttl.
Result<std::optional<backend::CacheOptions>> cache_options(const GlobalOptions& global);

// The same options on a worker's command line (before its subcommand).
std::vector<std::string> cache_argv(const GlobalOptions& global);

} // namespace pss::cli

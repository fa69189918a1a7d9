// One spdlog logger per module, all writing to stderr through one sink:
//   pssupervise[clamav] warning: clamd exited with status 1
#pragma once

#include <memory>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>

namespace pss::log {

// The logger for a module or engine name (created on first use, thread-safe).
std::shared_ptr<spdlog::logger> get(std::string_view name);

// Level for every logger, present and future ("trace", "debug", "info", "warning", ...).
// Returns false for an unknown level name.
bool set_level(std::string_view level);

// "json": one JSON object per line ({"time","level","logger","msg"}); otherwise text.
void set_format(std::string_view format);

} // namespace pss::log

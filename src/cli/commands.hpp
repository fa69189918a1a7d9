// `pssupervise commands [NAME [ARGS...]]`: an engine's commands. Built in: `info` (identity,
// versions, environment) and `scan_file FILE...`; the manifest adds its own (e.g. `update`).
#pragma once

#include "cli/options.hpp"

#include <CLI/App.hpp>
#include <string>
#include <vector>

namespace pss::cli {

struct CommandsOptions {
  std::vector<std::string> words; // NAME ARGS...
};

void setup_commands(CLI::App& app, CommandsOptions& opts);
int run_commands(const GlobalOptions& global, const CommandsOptions& opts);

} // namespace pss::cli

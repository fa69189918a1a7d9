// Options shared by every subcommand (before the command name on the command line).
#pragma once

#include <string>
#include <vector>

namespace pss::cli {

struct GlobalOptions {
  std::vector<std::string> engines{"clamav"}; // --engine NAME[,NAME...]
  std::string engines_dir;                    // --engines-dir
  bool verbose = false;                       // -v
  std::string log_level = "warning";          // --log-level
  std::string log_format = "text";            // --log-format text|json
};

} // namespace pss::cli

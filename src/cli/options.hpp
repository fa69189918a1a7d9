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
  // The result cache (backend/cached.hpp): --cache ("" the default file, off, a path,
  // redis://...; default $PSS_CACHE), --cache-ttl, --rescan.
  std::string cache;
  std::string cache_ttl = "7d";
  bool rescan = false;
};

} // namespace pss::cli

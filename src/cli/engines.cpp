#include "cli/engines.hpp"

#include "engine/manifest.hpp"

#include <cstdio>

namespace pss::cli {

int run_engines(const GlobalOptions& global) {
  auto search = engine::engine_search_path(global.engines_dir);
  auto names = engine::list_engines(search);
  if (names.empty()) {
    std::fprintf(stderr, "pssupervise: no engines found (searched %zu folders)\n", search.size());
    return 2;
  }
  int status = 0;
  std::printf("%-12s %-8s %-8s %-24s %s\n", "ENGINE", "DRIVER", "RUNTIME", "PRODUCT", "FOLDER");
  for (const auto& name : names) {
    auto dir = engine::find_engine(name, search);
    auto m = dir ? engine::load_manifest(*dir) : Result<engine::Manifest>(dir.error());
    if (!m) {
      std::printf("%-12s invalid: %s\n", name.c_str(), m.error().message.c_str());
      status = 2;
      continue;
    }
    std::printf("%-12s %-8s %-8s %-24s %s\n", name.c_str(), m->driver.c_str(), m->runtime.c_str(),
                (m->product + " (" + m->vendor + ")").c_str(), dir->c_str());
  }
  return status;
}

} // namespace pss::cli

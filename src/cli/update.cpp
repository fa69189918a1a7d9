#include "cli/update.hpp"

#include "engine/engine_set.hpp"
#include "engine/update.hpp"
#include "util/command_loop.hpp"

#include <cstdio>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

asio::awaitable<void> update_all(asio::any_io_executor ex, engine::EngineSet& set, int& status) {
  std::exception_ptr failure;
  try {
    co_await set.start_all();
    for (auto* e : set.engines()) {
      auto out = co_await engine::update_engine(ex, *e, true);
      if (out.ok) {
        std::printf("%s: updated, definitions %s -> %s\n", out.engine.c_str(),
                    out.before.value_or("-").c_str(), out.after.value_or("-").c_str());
      } else {
        std::printf("%s: update failed (%s), the old definitions stay: %s\n", out.engine.c_str(),
                    out.stage.c_str(), out.message.c_str());
        status = 1;
      }
      std::fflush(stdout);
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await set.stop_all();
  if (failure) {
    std::rethrow_exception(failure);
  }
}

} // namespace

int run_update(const GlobalOptions& global) {
  CommandLoop loop;
  engine::EngineSet set(global.engines, global.engines_dir, loop.executor());
  // Refused before anything runs: an engine with nothing to update from.
  for (auto* e : set.engines()) {
    if (!engine::has_updater(*e)) {
      std::fprintf(stderr,
                   "pssupervise: error: %s has no updater (set %s_UPDATER or give its manifest "
                   "an \"update\")\n",
                   e->manifest().name.c_str(), e->env().prefix.c_str());
      return 2;
    }
  }
  int status = 0;
  loop.on_signal([&loop, &set](int) {
    loop.give_up_after(set.stop_all(), std::chrono::seconds(10), 130, "update interrupted");
  });
  loop.run(update_all(loop.executor(), set, status));
  return status;
}

} // namespace pss::cli

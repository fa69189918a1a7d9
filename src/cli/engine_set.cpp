#include "cli/engine_set.hpp"

#include "util/log.hpp"

namespace pss::cli {

EngineSet::EngineSet(const GlobalOptions& opts, boost::asio::any_io_executor ex) {
  auto search = engine::engine_search_path(opts.engines_dir);
  for (const auto& name : opts.engines) {
    auto dir = engine::find_engine(name, search);
    if (!dir) {
      throw Fatal(dir.error().message);
    }
    auto manifest = engine::load_manifest(*dir);
    if (!manifest) {
      throw Fatal(manifest.error().message);
    }
    auto env = env::resolve_engine_env(manifest->name, *dir, manifest->env);
    if (!env) {
      throw Fatal(env.error().message);
    }
    auto engine = engine::make_engine(std::move(*manifest), std::move(*env), ex);
    if (!engine) {
      throw Fatal(engine.error().message);
    }
    m_engines.push_back(std::move(*engine));
  }
}

std::vector<engine::Engine*> EngineSet::engines() const {
  std::vector<engine::Engine*> out;
  for (const auto& e : m_engines) {
    out.push_back(e.get());
  }
  return out;
}

boost::asio::awaitable<void> EngineSet::start_all() {
  for (auto& e : m_engines) {
    try {
      co_await e->start();
    } catch (...) {
      rethrow_with_context("while starting engine " + e->manifest().name);
    }
  }
}

boost::asio::awaitable<void> EngineSet::stop_all() {
  for (auto& e : m_engines) {
    try {
      co_await e->stop();
    } catch (const std::exception& ex) {
      log::get(e->manifest().name)->error("while stopping: {}", ex.what());
    }
  }
}

} // namespace pss::cli

#include "engine/engine_set.hpp"

#include "util/log.hpp"

namespace pss::engine {

Result<LoadedEngine> load_engine(const std::string& name,
                                 const std::vector<std::filesystem::path>& search) {
  auto dir = find_engine(name, search);
  if (!dir) {
    return dir.error();
  }
  auto manifest = load_manifest(*dir);
  if (!manifest) {
    return manifest.error();
  }
  auto env = env::resolve_engine_env(manifest->name, *dir, manifest->env);
  if (!env) {
    return env.error();
  }
  return LoadedEngine{std::move(*manifest), std::move(*env)};
}

EngineSet::EngineSet(const std::vector<std::string>& names,
                     const std::filesystem::path& engines_dir, boost::asio::any_io_executor ex) {
  auto search = engine_search_path(engines_dir);
  for (const auto& name : names) {
    auto loaded = load_engine(name, search);
    if (!loaded) {
      throw Fatal(loaded.error().message);
    }
    auto engine = make_engine(std::move(loaded->manifest), std::move(loaded->env), ex);
    if (!engine) {
      throw Fatal(engine.error().message);
    }
    m_engines.push_back(std::move(*engine));
  }
}

std::vector<Engine*> EngineSet::engines() const {
  std::vector<Engine*> out;
  for (const auto& e : m_engines) {
    out.push_back(e.get());
  }
  return out;
}

namespace {

// Stands in for an engine that could not start: every scan answers `unknown` with the reason,
// so the other engines' answers are unaffected.
class FailedEngine final : public Engine {
public:
  FailedEngine(std::unique_ptr<Engine> inner, std::string reason)
      : m_inner(std::move(inner)), m_reason(std::move(reason)) {}
  const Manifest& manifest() const override { return m_inner->manifest(); }
  const env::EngineEnv& env() const override { return m_inner->env(); }
  boost::asio::awaitable<void> start() override { co_return; }
  boost::asio::awaitable<Result<void>> reload() override { co_return make_error(m_reason); }
  boost::asio::awaitable<model::Analysis> scan(const artifact::Artifact&,
                                               Clock::time_point) override {
    co_return model::Analysis::unknown_because(m_reason);
  }
  boost::asio::awaitable<void> stop() override { co_await m_inner->stop(); }
  EngineVersions versions() const override { return {}; }

private:
  std::unique_ptr<Engine> m_inner;
  std::string m_reason;
};

} // namespace

boost::asio::awaitable<void> EngineSet::start_all() {
  std::size_t failed = 0;
  std::string last_error;
  for (auto& e : m_engines) {
    std::string error;
    try {
      co_await e->start();
      continue;
    } catch (const std::exception& ex) {
      error = "while starting engine " + e->manifest().name + ": " + ex.what();
    }
    // One engine: its failure is the run's. Several: the others still answer.
    if (m_engines.size() == 1) {
      throw Fatal(error);
    }
    log::get(e->manifest().name)->error("{}", error);
    ++failed;
    last_error = error;
    e = std::make_unique<FailedEngine>(std::move(e), "engine failed to start: " + error);
  }
  if (failed == m_engines.size()) {
    throw Fatal(last_error + " (and every other engine failed too)");
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

} // namespace pss::engine

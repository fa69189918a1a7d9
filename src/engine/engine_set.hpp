// Engines by name: found in the search path, their manifests read, their environment resolved
// (load_engine), their drivers built (EngineSet), started and stopped together.
#pragma once

#include "engine/engine.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pss::engine {

// An engine found and configured, not built: what the `process` backend's parent and
// `engines` need without starting anything.
struct LoadedEngine {
  Manifest manifest;
  env::EngineEnv env;
};

// find_engine → load_manifest → resolve_engine_env. The error names the engine and what is
// wrong with it.
Result<LoadedEngine> load_engine(const std::string& name,
                                 const std::vector<std::filesystem::path>& search);

class EngineSet {
public:
  // `engines_dir` empty: the default search path. Throws pss::Fatal naming the engine and
  // what is wrong with it.
  EngineSet(const std::vector<std::string>& names, const std::filesystem::path& engines_dir,
            boost::asio::any_io_executor ex);

  std::vector<Engine*> engines() const;
  // Several engines: one that cannot start answers `unknown` with the reason and the others
  // go on; throws Fatal "while starting engine X: ..." when it is the only one (or all fail).
  boost::asio::awaitable<void> start_all();
  boost::asio::awaitable<void> stop_all(); // never throws; idempotent

private:
  std::vector<std::unique_ptr<Engine>> m_engines;
};

} // namespace pss::engine

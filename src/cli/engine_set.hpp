// Loads the engines named by --engine: finds their folders, reads their manifests,
// resolves their environment and builds their drivers. Starts and stops them together.
#pragma once

#include "cli/options.hpp"
#include "engine/engine.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <vector>

namespace pss::cli {

class EngineSet {
public:
  // Throws pss::Fatal naming the engine and what is wrong with it.
  EngineSet(const GlobalOptions& opts, boost::asio::any_io_executor ex);

  std::vector<engine::Engine*> engines() const;
  boost::asio::awaitable<void> start_all(); // throws Fatal "while starting engine X: ..."
  boost::asio::awaitable<void> stop_all();  // never throws

private:
  std::vector<std::unique_ptr<engine::Engine>> m_engines;
};

} // namespace pss::cli

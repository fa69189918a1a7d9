// New definitions for a running engine: its updater (${NAME_UPDATER}, else the manifest's
// "update"), then Engine::reload(). The outcome of the last one is kept in
// ${NAME_STATE_HOME}/last-update.json, so that `engines` shows it from any process.
#pragma once

#include "engine/engine.hpp"

#include <optional>
#include <string>

namespace pss::engine {

struct UpdateOutcome {
  std::string engine;
  bool ok = false;
  std::string stage;   // "updater" or "reload": where it failed (or "reload" when it did not)
  std::string message; // why it failed; empty when ok
  std::optional<std::string> before; // definitions version before, and after (when ok)
  std::optional<std::string> after;
  std::string at; // ISO 8601, UTC
};

// Whether the engine has an updater (${NAME_UPDATER} or the manifest's "update").
bool has_updater(const Manifest& manifest, const env::EngineEnv& env);
bool has_updater(const Engine& engine);

// Runs the updater to its end or its timeout: Error "the updater failed (exited with status
// 1)" with its last lines, or "X has no updater".
boost::asio::awaitable<Result<void>> run_updater(boost::asio::any_io_executor ex,
                                                 const Manifest& manifest,
                                                 const env::EngineEnv& env,
                                                 const wine::Runtime* wine);

// Runs the updater when `run_updater` (it must have one: has_updater), then reloads the
// engine. A failure at either step leaves the old definitions serving; it is logged, returned
// and recorded. Never throws.
boost::asio::awaitable<UpdateOutcome> update_engine(boost::asio::any_io_executor ex,
                                                    Engine& engine, bool run_updater);

// The last outcome recorded for the engine, if any ("ok 2026-12-05T11:40:00Z",
// "failed (reload) 2026-...: clamd refused ..."), for `engines`.
std::optional<std::string> last_update_summary(const env::EngineEnv& env);

} // namespace pss::engine

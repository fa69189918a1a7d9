// The scanner interface every driver implements, and the drivers' dispatch table.
#pragma once

#include "artifact/fetch.hpp"
#include "engine/manifest.hpp"
#include "env/engine_env.hpp"
#include "model/analysis.hpp"
#include "process/child.hpp"
#include "supervisor/service.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace pss::wine {
class Runtime;
}

namespace pss::engine {

using Clock = std::chrono::steady_clock;

// What an engine says about itself once started.
// Thrown by start() when the engine needs a setting the user has not given (the URL of a
// vendor's server): not a fault of the engine; `engines` lists it as "not configured".
class NotConfigured : public Fatal {
public:
  using Fatal::Fatal;
};

struct EngineVersions {
  std::optional<std::string> engine;      // "1.4.6"
  std::optional<std::string> definitions; // "27000"; absent when the engine has none
  std::string note;                       // e.g. "custom signature database: no definition number"
};

struct CommandOutput {
  std::optional<process::ExitStatus> status; // nullopt: did not start or timed out
  std::string output;                        // stdout, decoded; or why it did not run
  std::vector<std::string> errors;           // the last lines of its stderr
};

class Engine {
public:
  virtual ~Engine() = default;

  virtual const Manifest& manifest() const = 0;
  // Its resolved ${NAME_*} variables (the updater and the definitions digest need them).
  virtual const env::EngineEnv& env() const = 0;
  // The Wine its programs run under; nullptr for a native engine.
  virtual const wine::Runtime* wine_runtime() const { return nullptr; }
  // Makes the engine ready (starts its daemon, reads its versions). Throws pss::Fatal with
  // the reason (e.g. the daemon's last output lines) if it cannot.
  virtual boost::asio::awaitable<void> start() = 0;
  // Scans one artifact before `deadline`. Scan failures are not exceptions: they come back
  // as an `unknown` Analysis whose `error` says why. Fills only what the engine knows
  // (result, name, versions, metadata); analyze() adds the rest.
  virtual boost::asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                                       Clock::time_point deadline) = 0;
  // Takes the definitions now on disk without dropping a scan (clamd's RELOAD, a new server
  // instance, a new setup generation) and reads its versions again; scans in flight finish
  // on the old ones. Error if the new definitions cannot be used: the old ones go on serving.
  // After start(); one at a time.
  virtual boost::asio::awaitable<Result<void>> reload();
  // Stops what start() started; idempotent, never throws.
  virtual boost::asio::awaitable<void> stop() = 0;
  virtual EngineVersions versions() const = 0;
  // The supervised server's state, pid, uptime and restarts; nullopt for engines without one.
  virtual std::optional<supervisor::ServiceStatus> service_status() const { return std::nullopt; }
  // Every instance of a pool of servers (daemon.instances), in order; one for a single server.
  virtual std::vector<supervisor::ServiceStatus> instance_statuses() const {
    if (auto s = service_status()) {
      return {*s};
    }
    return {};
  }
  // Whether its scans read the artifact's sha256 (a {sha256} placeholder in its manifest, or
  // a driver that sends it): when none does and nothing shows the bounty, nobody reads local
  // files before the scan.
  virtual bool uses_sha256() const;
  // Runs one of the manifest's commands with extra arguments (after start()).
  virtual boost::asio::awaitable<CommandOutput> run_command(const std::string& name,
                                                            const std::vector<std::string>& args);
};

// Runs a manifest command natively, or through `wine` when given. Used by the drivers.
boost::asio::awaitable<CommandOutput>
run_manifest_command(boost::asio::any_io_executor ex, const Manifest& manifest,
                     const env::EngineEnv& env, const std::string& name,
                     const std::vector<std::string>& args, const wine::Runtime* wine);

// The {placeholders} of an artifact for argv and params templates: {path}, {nt_path} (its
// Windows path under Wine), {sha256}, {mimetype}, {size}.
std::map<std::string, std::string> artifact_placeholders(const artifact::Artifact& artifact);

// Runs `cmd` (a command, the setup, the updater) to completion or its timeout; `what` names
// it in messages ("setup"). `cwd` empty: ours. `confine_writes` (a native setup): it may
// write only beneath `cwd`, its scratch folder and /dev/null.
boost::asio::awaitable<CommandOutput>
run_command_spec(boost::asio::any_io_executor ex, const Manifest& manifest,
                 const env::EngineEnv& env, const CommandSpec& cmd, const std::string& what,
                 const std::vector<std::string>& args, const wine::Runtime* wine,
                 const std::map<std::string, std::string>& placeholders = {},
                 const std::filesystem::path& cwd = {}, bool confine_writes = false);

// Builds the engine of a manifest with the driver it names ("clamd", ...).
// Error for an unknown driver (listing the known ones).
Result<std::unique_ptr<Engine>> make_engine(Manifest manifest, env::EngineEnv env,
                                            boost::asio::any_io_executor ex);

// The full answer for one bounty: a skip for unsupported types, else the engine's scan,
// with product, vendor, versions, confidence and bid filled in. Never throws for a scan.
boost::asio::awaitable<model::Analysis> analyze(Engine& engine, const artifact::Artifact& artifact,
                                                const model::Bounty& bounty,
                                                Clock::time_point deadline);

} // namespace pss::engine

// What the clamd and JSON-RPC drivers share about a manifest's "daemon": its files (runtime
// dir, private dirs, rendered config), and the supervisor's ServiceSpec built from it.
#pragma once

#include "engine/manifest.hpp"
#include "env/engine_env.hpp"
#include "supervisor/service.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace pss::wine {
class Runtime;
}

namespace pss::engine {

// Creates the runtime dir, the daemon's private dirs and its config files. Throws Fatal.
void prepare_daemon_files(const Manifest& manifest, env::EngineEnv& env);

// ${VAR} (engine variables) and {placeholder} expansion; throws Fatal naming `what`.
std::string expand_or_throw(const Manifest& manifest, const env::EngineEnv& env,
                            const std::string& text, const std::string& what,
                            const std::map<std::string, std::string>& placeholders = {});

// The supervisor's view of the daemon: argv (through Wine if `wine`), environment, timeouts,
// restart policy. `placeholders` is called before each start ({port} for instance). Probes
// and the shutdown are the driver's to add. `manifest` and `env` must outlive the service.
supervisor::ServiceSpec
daemon_service_spec(const Manifest& manifest, const env::EngineEnv& env, const wine::Runtime* wine,
                    std::function<std::map<std::string, std::string>()> placeholders);

// Readiness by connection: "tcp:IP:PORT" or "unix:/path" accepts before `deadline`.
boost::asio::awaitable<Result<void>> connect_probe(std::string where,
                                                   std::chrono::steady_clock::time_point deadline);

// A loopback TCP port free right now (bound and released), for a server we are about to start.
Result<std::uint16_t> free_loopback_port();

} // namespace pss::engine

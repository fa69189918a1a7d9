// Engine manifests: engines/<name>/engine.json, documented field by field in
// engines/README.md. Engines are data; the driver named here is code for a protocol.
#pragma once

#include "process/limits.hpp"
#include "supervisor/machine.hpp"
#include "util/error.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pss::engine {

// A long-lived server the engine runs under the supervisor (its own clamd, a vendor's
// JSON-RPC server): how to start it, know it ready and healthy, restart and stop it.
struct DaemonSpec {
  std::vector<std::string> argv;          // ${VAR} templates; {port}: a free loopback port
  std::map<std::string, std::string> env; // extra variables for it (templates)
  // Config files rendered from templates: template (relative to the engine folder) → target.
  std::vector<std::pair<std::string, std::string>> config;
  std::vector<std::string> dirs; // private (0700) directories to create first
  std::string socket;            // clamd: "unix:/path" or "tcp:host:port", a template
  std::string ready_line;        // readiness: an output line matching this regex...
  bool ready_probe = true;       // ...and the protocol's ping (clamd PING, JSON-RPC)
  std::string ready_connect;     // ...or, without a ping, "tcp:host:port"/"unix:/path" accepting
  std::chrono::milliseconds ready_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds health_interval{std::chrono::seconds(10)}; // 0: no health checks
  std::chrono::milliseconds health_timeout{std::chrono::seconds(5)};
  int health_failures = 2;
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(10)};
  supervisor::RestartPolicy restart;
  int concurrency = 0; // scans at once against it; 0: no limit of ours
  // Instances of the server (a pool): a number, a ${VAR} holding one, or "cores".
  std::string instances = "1";
  // A reload in place (clamd's RELOAD): what the daemon's log says when the new definitions
  // are in use or were refused. Without it, a reload starts a new instance and retires the
  // old one.
  struct Reload {
    std::string command;              // sent on the driver's control channel, e.g. "RELOAD"
    std::string log;                  // the daemon's log file (a template)
    std::string done;                 // ECMAScript regex of the line saying it is in use
    std::string failed;               // ...and of the line saying it was refused
    std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  };
  std::optional<Reload> reload;
};

// Where to find a daemon somebody else runs: the environment variables to read.
struct ExternalSpec {
  std::string socket_env; // e.g. CLAMD_SOCKET: a unix socket path
  std::string host_env;   // e.g. CLAMD_HOST
  std::string port_env;   // e.g. CLAMD_PORT
  std::string default_port;
};

// An engine's own command (`pssupervise commands NAME`): e.g. "update" running its updater.
struct CommandSpec {
  std::string help;
  std::vector<std::string> argv; // templates; the user's arguments are appended
  std::chrono::milliseconds timeout{std::chrono::seconds(600)};
  std::string encoding = "utf-8";
};

// "limits": what every scanner process of the engine may use (daemons, servers, one-shot
// runs, commands; not Wine's own wineserver). No CPU or address-space limit by default:
// Wine reserves a huge address space, and a server's CPU time grows without end.
struct Limits {
  static constexpr std::uint64_t k_default_open_files = 1024;
  static constexpr std::size_t k_default_output = 16 * 1024 * 1024;
  process::ResourceLimits rlimits{std::nullopt, std::nullopt, k_default_open_files};
  std::size_t output = k_default_output; // stdout of a one-shot run or command, in bytes
};

struct Manifest {
  std::string name;                       // folder name, e.g. "clamav"
  std::filesystem::path dir;              // the engine's folder
  std::string product;                    // "ClamAV"
  std::string vendor;                     // "Cisco Talos"
  std::vector<std::string> categories;    // model/category.hpp names, or "*"
  std::string runtime = "native";         // native | wine
  std::string driver;                     // clamd
  std::map<std::string, std::string> env; // defaults of ${ENGINE}_* (key without prefix)
  // Our variables a scanner needs as they are (a proxy, a licence server): nothing else of
  // our environment reaches it (env/scanner_env.hpp).
  std::vector<std::string> pass_env;
  Limits limits;
  std::optional<DaemonSpec> daemon;
  std::optional<ExternalSpec> external;
  std::chrono::milliseconds scan_timeout{std::chrono::seconds(300)};
  std::map<std::string, CommandSpec> commands;
  // Run once per engine start (and per reload) into a new prepared-data folder, which scans
  // name as {prepared}: compiled rules, an unpacked database (engine/prepared.hpp).
  std::optional<CommandSpec> setup;
  // Fetches new definitions (`pssupervise update`); ${NAME_UPDATER} replaces its argv.
  std::optional<CommandSpec> update;
  // Files and folders (templates) whose digest is the definitions version when the engine
  // reports none: "custom:<12 hex>" (engine/definitions.hpp).
  std::vector<std::string> definitions;
  // The author's callbacks (argv templates; the event as JSON on stdin): once per bounty.
  std::vector<std::string> on_success;
  std::vector<std::string> on_error;
  std::chrono::milliseconds callback_timeout{std::chrono::seconds(30)};
  double malicious_confidence = 1.0;
  double benign_confidence = 1.0;
  nlohmann::json raw; // the whole file, for driver-specific fields
};

// Parses and validates engines/<name>/engine.json. Errors name the file and the field.
Result<Manifest> load_manifest(const std::filesystem::path& engine_dir);
Result<Manifest> parse_manifest(const nlohmann::json& j, const std::filesystem::path& engine_dir);

// daemon.instances once expanded: 1 to 256, or "cores" (`cores`, at least 1). The error
// says what is allowed.
Result<int> parse_instances(const std::string& text, int cores);

// Folders searched for engines, in order: `explicit_dir` (--engines-dir) if given, else
// $PSS_ENGINES_DIR, <prefix>/share/pssupervise/engines, and the source tree's engines/.
std::vector<std::filesystem::path> engine_search_path(const std::filesystem::path& explicit_dir);
// The folder of engine `name`; Error lists where it looked and the engines it saw.
Result<std::filesystem::path> find_engine(const std::string& name,
                                          const std::vector<std::filesystem::path>& search);
// Names of all engines found (sorted, unique).
std::vector<std::string> list_engines(const std::vector<std::filesystem::path>& search);

} // namespace pss::engine

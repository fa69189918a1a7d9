// Resolution of an engine's ${ENGINE}_* variables (DESIGN.md, Environment):
//   1. the process environment (CLAMAV_PATH=...) wins;
//   2. else the manifest's "env" default, expanded (it may use ${ENGINE_DIR}, other vars);
//   3. else a built-in default:
//      PATH          (none: executables are looked up on $PATH)
//      SDK_HOME      the engine's folder (engines/<name>)
//      CONFIG_HOME   ${XDG_CONFIG_HOME:-~/.config}/pssupervise/<name>
//      SECRETS_HOME  <CONFIG_HOME>/secrets
//      CACHE_HOME    ${XDG_CACHE_HOME:-~/.cache}/pssupervise/<name>
//      DATA_HOME     ${XDG_DATA_HOME:-~/.local/share}/pssupervise/<name>
//      STATE_HOME    ${XDG_STATE_HOME:-~/.local/state}/pssupervise/<name>
//      RUNTIME_DIR   ${XDG_RUNTIME_DIR}/pssupervise/<name>; if XDG_RUNTIME_DIR is unset too,
//                    a private 0700 directory under $TMPPREFIX/$TMPDIR (with a warning)
//      SCANNER, UPDATER  (none)
// Engine-specific keys (e.g. CLAMAV_MAX_THREADS) come from the manifest and may be
// overridden the same way. Manifests may also use ENGINE_DIR (the engine's folder),
// ENGINE_NAME, and PSS_BUILD_DIR (the build tree of this pssupervise, for test scanners).
#pragma once

#include "util/error.hpp"
#include "util/temp_file.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::env {

using Getenv = std::function<std::optional<std::string>(std::string_view name)>;
// The real process environment.
std::optional<std::string> process_getenv(std::string_view name);

// "clamav" → "CLAMAV", "my-engine" → "MY_ENGINE".
std::string env_prefix(std::string_view engine_name);

// The standard keys, in documentation order.
inline constexpr std::string_view k_standard_keys[] = {
    "PATH",      "SDK_HOME",   "SECRETS_HOME", "CONFIG_HOME", "CACHE_HOME",
    "DATA_HOME", "STATE_HOME", "RUNTIME_DIR",  "SCANNER",     "UPDATER"};

struct EngineEnv {
  std::string engine;                         // "clamav"
  std::string prefix;                         // "CLAMAV"
  std::map<std::string, std::string> vars;    // full names: CLAMAV_PATH → /usr/sbin, ENGINE_DIR
  bool runtime_dir_from_user = false;         // RUNTIME_DIR came from the environment
  std::optional<TempDir> private_runtime_dir; // made by prepare_runtime_dir, removed on exit

  // "PATH" or "CLAMAV_PATH" → value, if set.
  std::optional<std::string> get(std::string_view key) const;
  // Lookup for expand(): engine vars, then ENGINE_DIR/ENGINE_NAME, then the process env.
  std::optional<std::string> lookup(std::string_view name) const;
};

// Pure resolution (no file-system access). Error names the variable whose default could
// not be expanded.
Result<EngineEnv> resolve_engine_env(std::string_view engine_name,
                                     const std::filesystem::path& engine_dir,
                                     const std::map<std::string, std::string>& manifest_defaults,
                                     const Getenv& getenv = process_getenv);

// Makes RUNTIME_DIR usable: if the user set it, it must be a directory owned by us with no
// group/other access (created 0700 if missing) — otherwise Error ("refusing: ... is mode
// 0755, must be 0700"). If it was not set and XDG_RUNTIME_DIR is unset, a private directory
// is created under temp_base_dir() and `warning` receives a message saying so.
Result<void> prepare_runtime_dir(EngineEnv& env, std::string& warning);

// Checks a directory for private use: exists (or is created 0700), is a directory, owned by
// the effective uid, mode & 077 == 0.
Result<void> check_private_dir(const std::filesystem::path& dir, bool create);

} // namespace pss::env

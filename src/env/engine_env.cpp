#include "env/engine_env.hpp"

#include "env/expand.hpp"
#include "pss_config.h"
#include "util/posix.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace pss::env {

namespace fs = std::filesystem;

std::optional<std::string> process_getenv(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) {
    return std::nullopt;
  }
  return std::string(v);
}

std::string env_prefix(std::string_view engine_name) {
  std::string out;
  for (unsigned char c : engine_name) {
    out.push_back(std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_');
  }
  return out;
}

std::optional<std::string> EngineEnv::get(std::string_view key) const {
  std::string full(key);
  if (!full.starts_with(prefix + "_")) {
    full = prefix + "_" + full;
  }
  auto it = vars.find(full);
  if (it == vars.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<std::string> EngineEnv::lookup(std::string_view name) const {
  if (auto it = vars.find(std::string(name)); it != vars.end()) {
    return it->second;
  }
  return process_getenv(name);
}

namespace {

std::string xdg_dir(const Getenv& getenv, std::string_view var, std::string_view home_rel) {
  if (auto v = getenv(var); v && !v->empty()) {
    return *v;
  }
  auto home = getenv("HOME");
  return (fs::path(home && !home->empty() ? *home : "/") / home_rel).native();
}

// Where this pssupervise's own programs (the Windows test scanners under wine/) are: the build
// tree for a binary run from it, else the installed copy next to the binary
// (<prefix>/libexec/pssupervise), else the build tree it came from.
std::string programs_dir() {
  static const std::string dir = [] {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec || exe.parent_path() == fs::path(PSS_BUILD_DIR)) {
      return std::string(PSS_BUILD_DIR);
    }
    fs::path installed = exe.parent_path().parent_path() / "libexec" / "pssupervise";
    return fs::is_directory(installed, ec) ? installed.native() : std::string(PSS_BUILD_DIR);
  }();
  return dir;
}

} // namespace

Result<EngineEnv> resolve_engine_env(std::string_view engine_name, const fs::path& engine_dir,
                                     const std::map<std::string, std::string>& manifest_defaults,
                                     const Getenv& getenv) {
  EngineEnv e;
  e.engine = engine_name;
  e.prefix = env_prefix(engine_name);
  e.vars["ENGINE_DIR"] = engine_dir.native();
  e.vars["ENGINE_NAME"] = e.engine;
  // Where the test scanners built with this pssupervise live (the name is historical: the
  // build tree, or their installed folder).
  e.vars["PSS_BUILD_DIR"] = programs_dir();
  const std::string sub = "pssupervise/" + e.engine;

  std::map<std::string, std::string> builtin;
  builtin["SDK_HOME"] = engine_dir.native();
  builtin["CONFIG_HOME"] = (fs::path(xdg_dir(getenv, "XDG_CONFIG_HOME", ".config")) / sub).native();
  builtin["SECRETS_HOME"] = (fs::path(builtin["CONFIG_HOME"]) / "secrets").native();
  builtin["CACHE_HOME"] = (fs::path(xdg_dir(getenv, "XDG_CACHE_HOME", ".cache")) / sub).native();
  builtin["DATA_HOME"] =
      (fs::path(xdg_dir(getenv, "XDG_DATA_HOME", ".local/share")) / sub).native();
  builtin["STATE_HOME"] =
      (fs::path(xdg_dir(getenv, "XDG_STATE_HOME", ".local/state")) / sub).native();
  if (auto xrd = getenv("XDG_RUNTIME_DIR"); xrd && !xrd->empty()) {
    builtin["RUNTIME_DIR"] = (fs::path(*xrd) / sub).native();
  }

  // Lookup used while expanding manifest defaults: what is resolved so far, then the
  // process environment.
  Lookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    if (auto it = e.vars.find(std::string(name)); it != e.vars.end()) {
      return it->second;
    }
    return getenv(name);
  };

  auto resolve = [&](const std::string& key,
                     const std::optional<std::string>& fallback) -> Result<void> {
    const std::string full = e.prefix + "_" + key;
    if (auto v = getenv(full)) {
      e.vars[full] = *v;
      if (key == "RUNTIME_DIR") {
        e.runtime_dir_from_user = true;
      }
      return {};
    }
    if (auto it = manifest_defaults.find(key); it != manifest_defaults.end()) {
      auto r = expand(it->second, lookup);
      if (!r) {
        return make_error("engine " + e.engine + ": default of " + full + ": " + r.error().message);
      }
      e.vars[full] = *r;
      return {};
    }
    if (fallback) {
      e.vars[full] = *fallback;
    }
    return {};
  };

  for (std::string_view key : k_standard_keys) {
    std::string k(key);
    std::optional<std::string> fallback;
    if (auto it = builtin.find(k); it != builtin.end()) {
      fallback = it->second;
    }
    PSS_TRY_VOID(resolve(k, fallback));
  }
  for (const auto& [key, value] : manifest_defaults) {
    if (!e.vars.contains(e.prefix + "_" + key)) {
      PSS_TRY_VOID(resolve(key, std::nullopt));
    }
  }
  return e;
}

Result<void> check_private_dir(const fs::path& dir, bool create) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) {
      return errno_error("cannot use directory", dir);
    }
    std::error_code ec;
    fs::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return errno_error("cannot create directory", dir);
    }
    if (::stat(dir.c_str(), &st) != 0) {
      return errno_error("cannot use directory", dir);
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(quote(dir.native()) + " is not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    return make_error("refusing " + quote(dir.native()) + ": owned by uid " +
                      std::to_string(st.st_uid) + ", not by us (uid " +
                      std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return make_error("refusing " + quote(dir.native()) + ": mode " + mode +
                      " lets other users in; it must be 0700 (chmod 700)");
  }
  return {};
}

Result<void> prepare_runtime_dir(EngineEnv& env, std::string& warning) {
  const std::string key = env.prefix + "_RUNTIME_DIR";
  if (auto it = env.vars.find(key); it != env.vars.end()) {
    auto r = check_private_dir(it->second, true);
    if (!r) {
      return make_error(key + ": " + r.error().message);
    }
    return {};
  }
  auto dir = TempDir::create(temp_base_dir(), "pssupervise-" + env.engine + "-");
  if (!dir) {
    return make_error(key + ": " + dir.error().message);
  }
  env.vars[key] = dir->path().native();
  warning = key + " is not set (nor XDG_RUNTIME_DIR): using the private directory " +
            quote(dir->path().native()) + ", removed on exit";
  env.private_runtime_dir.emplace(std::move(*dir));
  return {};
}

} // namespace pss::env

// What a scanner process starts with: an environment built from nothing (none of ours
// leaks into it) and a private scratch directory (0700, its HOME, TMPDIR and cwd) under the
// engine's runtime dir, removed when the bounty or the run it served is over. Scratch
// directories carry our pid in their name, so that those left by a crashed pssupervise can
// be told from those of one still running, and removed.
#pragma once

#include "env/engine_env.hpp"
#include "util/error.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pss::env {

// The PATH every scanner gets (after ${ENGINE}_PATH when that is set).
inline constexpr const char* k_safe_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The environment of a scanner of engine `env`, from scratch:
//   PATH      ${ENGINE}_PATH (if set) then k_safe_path
//   LANG      C.UTF-8; LC_ALL: ours if set (a documented setting), else C.UTF-8
//   TZ        ours, if set
//   HOME, TMPDIR, TMP, TEMP   `scratch`
//   USER, LOGNAME             from the password database (our effective uid)
//   ${ENGINE}_*               the engine's variables, resolved (manifest "env" and defaults)
//   `pass_env`                each of these names that is set in ours (manifest "pass_env")
// Wine adds its own (wine::Runtime::wrap; it sets TMPDIR back to one per engine, where Wine
// finds its server); a daemon its "daemon.env".
std::map<std::string, std::string> scanner_environment(const EngineEnv& env,
                                                       const std::filesystem::path& scratch,
                                                       const std::vector<std::string>& pass_env,
                                                       const Getenv& getenv = process_getenv);

// A scratch directory: <runtime_dir>/scratch-<our pid>-XXXXXX, mode 0700, removed
// recursively (whatever the scanner left in it, read-only directories included) when
// destroyed.
class ScratchDir {
public:
  static Result<ScratchDir> create(const std::filesystem::path& runtime_dir);
  ScratchDir(ScratchDir&&) noexcept;
  ScratchDir& operator=(ScratchDir&&) noexcept;
  ~ScratchDir();

  const std::filesystem::path& path() const { return m_path; }

private:
  explicit ScratchDir(std::filesystem::path p) : m_path(std::move(p)) {}
  std::filesystem::path m_path;
};

// Removes the scratch directories in `runtime_dir` whose pid no longer runs (left by a
// pssupervise that crashed or was killed); returns them. Those of live processes stay.
std::vector<std::filesystem::path> remove_stale_scratch(const std::filesystem::path& runtime_dir);

} // namespace pss::env

// Prepared data (the manifest's "setup"): each engine start and each reload runs the setup
// once into a new generation folder, ${NAME_CACHE_HOME}/prepared/<generation>/, which is made
// read-only when the setup succeeded; scans name it as {prepared} ({nt_prepared} under Wine).
// A scan holds its generation until it ends, so a reload never pulls it from under a scan;
// the last holder removes it. Folders left by a pssupervise that died go at the next setup.
#pragma once

#include "engine/engine.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace pss::engine {

class PreparedData {
public:
  explicit PreparedData(std::filesystem::path dir);
  ~PreparedData(); // write access back, then removed
  PreparedData(const PreparedData&) = delete;
  PreparedData& operator=(const PreparedData&) = delete;

  const std::filesystem::path& dir() const { return m_dir; }
  // {prepared} and {nt_prepared} for argv templates.
  std::map<std::string, std::string> placeholders() const;

private:
  std::filesystem::path m_dir;
};

using Prepared = std::shared_ptr<const PreparedData>;

// Runs `manifest.setup` into a new generation under ${NAME_CACHE_HOME}/prepared/ and makes it
// read-only. Error: "setup failed (exit status 2): <its last output lines>".
boost::asio::awaitable<Result<Prepared>> run_setup(boost::asio::any_io_executor ex,
                                                   const Manifest& manifest,
                                                   const env::EngineEnv& env,
                                                   const wine::Runtime* wine);

// A reload's generation: a new one from the setup, or `current` when the manifest has none.
boost::asio::awaitable<Result<Prepared>>
next_generation(boost::asio::any_io_executor ex, const Manifest& manifest,
                const env::EngineEnv& env, const wine::Runtime* wine, Prepared current);

// Removes every write permission below `dir` and of `dir` itself (files and folders).
Result<void> make_read_only(const std::filesystem::path& dir);

} // namespace pss::engine

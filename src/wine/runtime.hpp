// The Wine runtime of one engine: its prefix (created once, under a lock so concurrent
// first uses cannot race), the environment Wine programs run with, and a persistent
// wineserver kept up while we run (launches then cost tens of ms instead of hundreds).
//
// Configuration (environment, with defaults):
//   WINELOADER              wine (on PATH)
//   WINESERVER              wineserver (on PATH)
//   PERSISTENT_WINESERVER   1; 0 lets each scan start its own server
//   ${ENGINE}_WINEPREFIX    ${ENGINE}_STATE_HOME/wineprefix
//   WINEDEBUG               -all (Wine's fixme:/err: noise off; it goes to stderr anyway)
//   WINEDLLOVERRIDES        mscoree,mshtml= (no Mono/Gecko install dialogs on a headless host)
//   LC_ALL                  C.UTF-8 (Wine's ANSI code page follows it: 1252 for C/en)
//   TZ                      passed through when set
//   TMPDIR                  ours, else /tmp. Debian's Wine keys the wineserver socket on it
//                           ($TMPDIR/<name in $WINEPREFIX/wineserver>/server-<dev>-<ino>), so
//                           every Wine process of the engine gets this one, never a scan's
//                           scratch dir: a different TMPDIR would start a second wineserver
//                           (~140 ms per scan). The scratch dir stays the scan's cwd and HOME.
//   WINEARCH, WINEDLLPATH   passed through when set (and WINELOADER, WINESERVER)
// Wine processes get nothing else of our environment: a scanner's is built by
// env::scanner_environment, Wine's tools get a minimal one (environment()).
#pragma once

#include "env/engine_env.hpp"
#include "process/child.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace pss::wine {

class Runtime {
public:
  // Reads the configuration; no I/O.
  explicit Runtime(const env::EngineEnv& env);
  ~Runtime();

  const std::filesystem::path& prefix() const { return m_prefix; }
  // Creates and initializes the prefix if needed (wineboot --init, serialized by a lock
  // file) and starts the persistent wineserver. Throws pss::Fatal with Wine's own words.
  boost::asio::awaitable<void> start(boost::asio::any_io_executor ex);
  // Stops the wineserver we started (wineserver -k, then waits for it); never throws.
  boost::asio::awaitable<void> stop();
  // Runs argv (argv[0] a Windows program) through the loader, adding Wine's settings to
  // spec.env (environment() when it has none).
  void wrap(process::SpawnSpec& spec) const;
  // Environment for Wine tools (wineboot, wineserver): PATH, LANG, HOME, USER and the
  // settings above; nothing else of ours.
  std::map<std::string, std::string> environment() const;
  // `wine --version` as read by start(), e.g. "wine-8.0 (Debian 8.0~repack-4)"; empty before.
  const std::string& version() const { return m_version; }

private:
  boost::asio::awaitable<void> start_server(boost::asio::any_io_executor ex);
  boost::asio::awaitable<void> init_prefix(boost::asio::any_io_executor ex);
  void add_to(std::map<std::string, std::string>& env) const;

  std::string m_engine;
  std::filesystem::path m_prefix;
  std::string m_loader;
  std::string m_server;
  std::string m_loader_dir; // put first on PATH when not a standard directory
  bool m_persistent = true;
  std::map<std::string, std::string> m_settings; // WINEPREFIX, WINEDEBUG, ...
  std::unique_ptr<process::Child> m_server_child;
  std::string m_version;
};

} // namespace pss::wine

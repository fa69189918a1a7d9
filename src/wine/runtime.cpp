#include "wine/runtime.hpp"

#include "env/engine_env.hpp"
#include "env/scanner_env.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pss::wine {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto k_init_timeout = 300s; // first wineboot of a prefix (FIELD-NOTES: minutes)
constexpr auto k_lock_poll = 100ms;
constexpr auto k_server_stop = 10s;
constexpr auto k_server_wait = 10s; // for a transient wineserver to go away
constexpr const char* k_ready_marker = ".pssupervise-initialized";

std::string getenv_or(const char* name, std::string fallback) {
  auto v = env::process_getenv(name);
  return v && !v->empty() ? *v : fallback;
}

using process::sleep_for;

} // namespace

Runtime::Runtime(const env::EngineEnv& env) : m_engine(env.engine) {
  if (auto p = env.get("WINEPREFIX")) {
    m_prefix = *p;
  } else {
    m_prefix = fs::path(env.get("STATE_HOME").value_or("/tmp")) / "wineprefix";
  }
  m_loader = getenv_or("WINELOADER", "wine");
  m_server = getenv_or("WINESERVER", "wineserver");
  m_persistent = getenv_or("PERSISTENT_WINESERVER", "1") != "0";
  m_settings["WINEPREFIX"] = m_prefix.native();
  m_settings["WINEDEBUG"] = getenv_or("WINEDEBUG", "-all");
  m_settings["WINEDLLOVERRIDES"] = getenv_or("WINEDLLOVERRIDES", "mscoree,mshtml=");
  m_settings["LC_ALL"] = getenv_or("LC_ALL", "C.UTF-8");
  // Where Wine looks for its server (see the header): the same for the persistent server,
  // wineboot and every scan, overriding the scratch TMPDIR a scanner's sandbox sets.
  m_settings["TMPDIR"] = getenv_or("TMPDIR", "/tmp");
  if (auto tz = env::process_getenv("TZ")) {
    m_settings["TZ"] = *tz;
  }
  // Wine's own settings, when the user made them, reach every Wine process.
  for (const char* name : {"WINELOADER", "WINESERVER", "WINEARCH", "WINEDLLPATH"}) {
    if (auto v = env::process_getenv(name); v && !v->empty()) {
      m_settings[name] = *v;
    }
  }
  if (auto loader = process::find_program(m_loader)) {
    auto dir = loader->parent_path().native();
    if (!dir.empty() && dir != "/usr/bin" && dir != "/bin") {
      m_loader_dir = dir;
    }
  }
}

Runtime::~Runtime() = default; // a wineserver still running is killed by ~Child

std::map<std::string, std::string> Runtime::environment() const {
  // From scratch, as a scanner's (env/scanner_env.hpp): no DISPLAY (headless: never try to
  // reach an X server), nothing else of ours. HOME is the user's, as Wine expects.
  std::map<std::string, std::string> env;
  env["PATH"] = env::k_safe_path;
  env["LANG"] = "C.UTF-8";
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    env["HOME"] = found->pw_dir;
    env["USER"] = found->pw_name;
    env["LOGNAME"] = found->pw_name;
  }
  add_to(env);
  return env;
}

void Runtime::add_to(std::map<std::string, std::string>& env) const {
  for (const auto& [k, v] : m_settings) {
    env[k] = v;
  }
  // Wine's helpers find each other on PATH: where our loader is comes first.
  if (!m_loader_dir.empty()) {
    env["PATH"] = m_loader_dir + ":" + env["PATH"];
  }
}

void Runtime::wrap(process::SpawnSpec& spec) const {
  spec.argv.insert(spec.argv.begin(), m_loader);
  if (!spec.env) {
    spec.env = environment();
  } else {
    add_to(*spec.env);
  }
}

asio::awaitable<void> Runtime::start(asio::any_io_executor ex) {
  auto log = log::get(m_engine);
  std::error_code ec;
  fs::create_directories(m_prefix.parent_path(), ec);
  if (::mkdir(m_prefix.c_str(), 0700) != 0 && errno != EEXIST) {
    throw Fatal(errno_error("cannot create the Wine prefix", m_prefix).message);
  }
  // The server first, so that wineboot and every scan use it.
  if (m_persistent && !m_server_child) {
    co_await start_server(ex);
  }
  if (!fs::exists(m_prefix / k_ready_marker)) {
    co_await init_prefix(ex);
  }
  if (m_version.empty()) {
    process::SpawnSpec spec;
    spec.argv = {m_loader, "--version"};
    spec.env = environment();
    spec.name = "wine";
    spec.capture_stdout = true;
    auto child = process::Child::spawn(ex, spec);
    if (!child) {
      throw Fatal(child.error().message + " (WINELOADER; is Wine installed?)");
    }
    if (co_await (*child)->wait_for(30s)) {
      auto out = (co_await (*child)->take_stdout()).bytes;
      m_version = out.substr(0, out.find('\n'));
    }
  }
}

asio::awaitable<void> Runtime::start_server(asio::any_io_executor ex) {
  auto log = log::get(m_engine);
  for (int attempt = 0; attempt < 2; ++attempt) {
    process::SpawnSpec spec;
    spec.argv = {m_server, "-p", "-f"};
    spec.env = environment();
    spec.name = "wineserver";
    auto child = process::Child::spawn(ex, spec);
    if (!child) {
      throw Fatal(child.error().message + " (WINESERVER; is Wine installed?)");
    }
    // A server already running for this prefix makes ours exit at once.
    if (!co_await (*child)->wait_for(200ms)) {
      log->info("persistent wineserver (pid {}) for {}", (*child)->pid(), m_prefix.native());
      m_server_child = std::move(*child);
      co_return;
    }
    if (attempt == 0) {
      // Most likely a short-lived one (a Wine program run by hand, a previous wineboot):
      // wait until it goes, then start ours.
      process::SpawnSpec wait;
      wait.argv = {m_server, "-w"};
      wait.env = environment();
      wait.name = "wineserver";
      if (auto waiter = process::Child::spawn(ex, wait)) {
        if (!co_await (*waiter)->wait_for(k_server_wait)) {
          co_await (*waiter)->stop(1s);
          break; // a persistent one: somebody else's
        }
      }
    }
  }
  log->info("a persistent wineserver already runs for {}; using it", m_prefix.native());
}

asio::awaitable<void> Runtime::init_prefix(asio::any_io_executor ex) {
  auto log = log::get(m_engine);
  // One initializer per prefix: others wait on the lock, then find the marker.
  fs::path lock_path = m_prefix.native() + ".lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) {
    throw Fatal(errno_error("cannot create the Wine prefix lock", lock_path).message);
  }
  auto deadline = std::chrono::steady_clock::now() + k_init_timeout;
  while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() > deadline) {
      throw Fatal("cannot lock the Wine prefix " + quote(m_prefix.native()) +
                  " (another pssupervise initializing it for too long?)");
    }
    co_await sleep_for(ex, k_lock_poll);
  }
  if (fs::exists(m_prefix / k_ready_marker)) {
    co_return; // initialized by whoever held the lock
  }
  log->info("initializing the Wine prefix {} (once; takes seconds)", m_prefix.native());
  auto started = std::chrono::steady_clock::now();
  process::SpawnSpec spec;
  spec.argv = {"wineboot", "--init"};
  spec.env = environment();
  spec.name = "wineboot";
  auto child = process::Child::spawn(ex, spec);
  if (!child) {
    throw Fatal(child.error().message + " (is Wine installed? env/bootstrap installs it)");
  }
  auto status = co_await (*child)->wait_for(k_init_timeout);
  if (!status) {
    co_await (*child)->stop(5s);
    throw Fatal("wineboot --init did not finish within 300 s" + (*child)->output_tail_text());
  }
  if (!status->success()) {
    throw Fatal("wineboot --init " + status->describe() + (*child)->output_tail_text());
  }
  UniqueFd marker(
      ::open((m_prefix / k_ready_marker).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  log->info("Wine prefix ready in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count());
}

asio::awaitable<void> Runtime::stop() {
  if (!m_server_child) {
    co_return;
  }
  auto log = log::get(m_engine);
  try {
    // wineserver -k ends every Wine process of the prefix, then the server itself exits.
    process::SpawnSpec spec;
    spec.argv = {m_server, "-k"};
    spec.env = environment();
    spec.name = "wineserver";
    auto ex = co_await asio::this_coro::executor;
    if (auto killer = process::Child::spawn(ex, spec)) {
      co_await (*killer)->wait_for(k_server_stop);
    }
    if (!co_await m_server_child->wait_for(k_server_stop)) {
      co_await m_server_child->stop(2s);
    }
    log->info("wineserver (pid {}) stopped", m_server_child->pid());
  } catch (const std::exception& e) {
    log->error("while stopping the wineserver: {}", e.what());
  }
  m_server_child.reset();
}

} // namespace pss::wine

#include "engine/clamd/engine.hpp"

#include "engine/clamd/client.hpp"
#include "engine/daemon.hpp"
#include "engine/definitions.hpp"
#include "env/expand.hpp"
#include "process/child.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/stat.h>

namespace pss::engine::clamd {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto k_external_check = 10s; // PING of a clamd somebody else runs
constexpr auto k_death_notice = 100ms; // a lost connection to the time its cause is known
constexpr auto k_log_poll = 20ms;      // a reload's log: a scan that may have met the switch waits for the next look

using process::sleep_for;

class ClamdEngine final : public Engine {
public:
  ClamdEngine(Manifest m, env::EngineEnv e, asio::any_io_executor ex)
      : m_manifest(std::move(m)), m_env(std::move(e)), m_ex(std::move(ex)),
        m_log(log::get(m_manifest.name)) {}

  ~ClamdEngine() override = default; // a daemon still running is killed by ~Service

  const Manifest& manifest() const override { return m_manifest; }
  const env::EngineEnv& env() const override { return m_env; }
  EngineVersions versions() const override { return m_versions; }

  asio::awaitable<void> start() override {
    auto where = (m_manifest.dir / "engine.json").native();
    if (m_manifest.setup) { // clamd reads its database folder itself
      throw Fatal(where + ": the clamd driver runs no \"setup\"");
    }
    if (m_manifest.daemon && m_manifest.daemon->instances != "1") { // clamd has MaxThreads
      throw Fatal(where + ": field 'daemon.instances': the clamd driver runs one clamd (its "
                          "MaxThreads sets how many files it scans at once)");
    }
    if (auto ep = external_endpoint()) {
      m_client.emplace(m_ex, *ep);
      auto pong = co_await m_client->command("PING", Clock::now() + k_external_check);
      if (!pong.reply || pong.reply->message != "PONG") {
        throw Fatal("clamd at " + ep->describe() +
                    " does not answer PING: " + (pong.reply ? pong.reply->message : pong.error));
      }
      m_log->info("using clamd at {}", ep->describe());
    } else if (m_manifest.daemon) {
      co_await start_service();
    } else {
      throw Fatal("no clamd to use: set " +
                  m_manifest.external.value_or(ExternalSpec{}).socket_env +
                  " or a host and port, or give the manifest a \"daemon\" section");
    }
    choose_transfer();
    co_await read_versions();
  }

  asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                        Clock::time_point deadline) override {
    if (!m_service) {
      Outcome out = co_await transfer(artifact, deadline);
      if (!out.reply && out.connection_lost && Clock::now() < deadline) {
        m_log->warn("{}; retrying once", out.error);
        out = co_await transfer(artifact, deadline);
      }
      co_return to_analysis(out);
    }
    // Our own clamd. During a reload, the answer must name the database that gave it: a scan
    // that may have met clamd's switch to the new one is scanned again (which_definitions).
    for (int pass = 0;; ++pass) {
      auto started = Clock::now();
      Outcome out = co_await scan_own(artifact, deadline);
      auto which = co_await which_definitions(started, Clock::now(), deadline);
      if (which || pass == 1) {
        auto a = to_analysis(out);
        if (a.result != model::Verdict::unknown && which && *which) {
          a.analysis_definition_version = **which;
        }
        co_return a;
      }
    }
  }

  asio::awaitable<CommandOutput> run_command(const std::string& name,
                                             const std::vector<std::string>& args) override {
    co_return co_await run_manifest_command(m_ex, m_manifest, m_env, name, args, nullptr);
  }

  // Our own clamd: the manifest's reload command (RELOAD), then its log until the new database
  // is active or refused; clamd scans on with the old one meanwhile (ConcurrentDatabaseReload)
  // and keeps it when the new one does not load. Somebody else's clamd is its owner's to
  // reload: its versions are read again.
  asio::awaitable<Result<void>> reload() override {
    if (!m_service) {
      co_await read_versions();
      co_return Result<void>{};
    }
    const auto& rl = m_manifest.daemon->reload;
    if (!rl) {
      co_return make_error(m_manifest.name + ": the manifest's daemon has no \"reload\"");
    }
    std::string log_path;
    try {
      log_path = expand_or_throw(m_manifest, m_env, rl->log, "daemon.reload.log");
    } catch (const Fatal& f) {
      co_return make_error(f.what());
    }
    std::error_code ec;
    auto offset = std::filesystem::file_size(log_path, ec);
    if (ec) {
      offset = 0;
    }
    auto deadline = Clock::now() + rl->timeout;
    auto gen = co_await m_service->acquire(deadline);
    if (!gen) {
      co_return make_error("clamd is not ready for a reload: " + gen.error().message);
    }
    // What the new version will be, known before clamd reads the files (a digest), or read
    // from clamd once it switched (a numbered database).
    auto sw = std::make_shared<Switch>();
    sw->before = m_versions.definitions;
    {
      EngineVersions next;
      add_definitions_digest(next, m_manifest, m_env);
      sw->after = next.definitions;
    }
    sw->clean_until = Clock::now();
    m_switch = sw;
    struct Over {
      ClamdEngine* e;
      std::shared_ptr<Switch> sw;
      ~Over() {
        sw->over = true;
        e->wake_poll_waiters();
      }
    } over{this, sw};
    auto answer = co_await m_client->command(rl->command, Clock::now() + k_external_check);
    if (!answer.reply) {
      co_return make_error("clamd did not answer " + rl->command + ": " + answer.error);
    }
    std::regex done(rl->done, std::regex::ECMAScript);
    std::regex failed(rl->failed, std::regex::ECMAScript);
    std::string pending;
    for (;;) {
      // The lines clamd wrote since the command.
      auto looked = Clock::now();
      std::ifstream in(log_path, std::ios::binary);
      in.seekg(0, std::ios::end);
      auto size = static_cast<std::uintmax_t>(in.tellg());
      if (size < offset) {
        offset = 0; // the log was truncated
      }
      in.seekg(static_cast<std::streamoff>(offset));
      std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      offset += chunk.size();
      pending += chunk;
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (std::regex_search(line, failed)) {
          co_return make_error("clamd refused the new definitions and keeps the old ones: " + line);
        }
        if (std::regex_search(line, done)) {
          sw->seen_at = Clock::now();
          if (!sw->after) { // a numbered database: clamd says which
            co_await read_versions();
            sw->after = m_versions.definitions;
          }
          m_versions.definitions = sw->after;
          wake_poll_waiters();
          // One PING past the switch, then the versions of the database now in use.
          co_await m_client->command("PING", Clock::now() + k_external_check);
          co_await read_versions();
          co_return Result<void>{};
        }
      }
      sw->clean_until = looked;
      wake_poll_waiters();
      if (Clock::now() >= deadline) {
        co_return make_error(
            "clamd did not finish its reload within " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(rl->timeout).count()) +
            " s (" + log_path + " shows no outcome)");
      }
      co_await sleep_for(m_ex, k_log_poll);
    }
  }

  asio::awaitable<void> stop() override {
    if (m_service) {
      co_await m_service->stop();
    }
  }

  std::optional<supervisor::ServiceStatus> service_status() const override {
    if (!m_service) {
      return std::nullopt;
    }
    return m_service->status();
  }

private:
  // What a reload of our clamd knows about clamd's switch to the new database. clamd logs its
  // "done" line and switches at once, in the thread that also accepts connections: a scan
  // that ended before a look at the log that did not show the line used the old database; one
  // that started after the line was seen uses the new one; any other is ambiguous.
  struct Switch {
    Clock::time_point clean_until; // the log did not show the line yet at this time
    std::optional<Clock::time_point> seen_at;
    bool over = false; // the reload ended (switched, refused or timed out)
    std::optional<std::string> before, after;
  };

  // A scan that lost its connection (clamd died) is retried once on the restarted clamd;
  // scans that come during the restart wait for it, up to their deadline.
  asio::awaitable<Outcome> scan_own(const artifact::Artifact& artifact,
                                    Clock::time_point deadline) {
    Outcome out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto gen = co_await m_service->acquire(deadline);
      if (!gen) {
        out = {};
        out.error = gen.error().message;
        co_return out;
      }
      out = co_await transfer(artifact, deadline);
      if (out.reply || !out.connection_lost || Clock::now() >= deadline) {
        break;
      }
      m_log->warn("{}; retrying once", out.error);
      // Its death, if it died, is seen within moments: then acquire() waits for the restart.
      co_await sleep_for(m_ex, k_death_notice);
    }
    co_return out;
  }

  // The definitions version of a scan that ran from `started` to `ended`: an outer nullopt
  // when it may have met the switch (it is scanned again), else the version (itself nullopt
  // when clamd's database has none). Waits for the reload's next look at the log when that
  // decides it (at most k_log_poll).
  asio::awaitable<std::optional<std::optional<std::string>>>
  which_definitions(Clock::time_point started, Clock::time_point ended,
                    Clock::time_point deadline) {
    while (m_switch) {
      const Switch& w = *m_switch;
      if (ended <= w.clean_until) {
        co_return std::optional<std::optional<std::string>>(w.before);
      }
      if (w.seen_at) {
        if (started > *w.seen_at) {
          co_return std::optional<std::optional<std::string>>(w.after);
        }
        co_return std::nullopt;
      }
      if (w.over || Clock::now() >= deadline) {
        break; // no switch: the old database answered
      }
      auto t = std::make_shared<asio::steady_timer>(m_ex, deadline);
      m_poll_waiters.push_back(t);
      co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return std::optional<std::optional<std::string>>(m_versions.definitions);
  }

  void wake_poll_waiters() {
    for (auto& w : m_poll_waiters) {
      if (auto t = w.lock()) {
        t->cancel();
      }
    }
    m_poll_waiters.clear();
  }

  // FILDES when clamd is on a unix socket (no copy), INSTREAM otherwise; ${ENGINE}_TRANSFER
  // (auto | instream | fildes) overrides.
  asio::awaitable<Outcome> transfer(const artifact::Artifact& artifact,
                                    Clock::time_point deadline) {
    if (m_use_fildes) {
      co_return co_await m_client->fildes(artifact.path, deadline);
    }
    co_return co_await m_client->instream(artifact.path, deadline);
  }

  void choose_transfer() {
    std::string mode = m_env.get("TRANSFER").value_or("auto");
    if (mode == "auto") {
      m_use_fildes = m_client->endpoint().is_unix;
    } else if (mode == "fildes") {
      if (!m_client->endpoint().is_unix) {
        throw Fatal(m_env.prefix + "_TRANSFER=fildes needs a unix socket, not " +
                    m_client->endpoint().describe());
      }
      m_use_fildes = true;
    } else if (mode == "instream") {
      m_use_fildes = false;
    } else {
      throw Fatal(m_env.prefix + "_TRANSFER must be auto, instream or fildes, not " + quote(mode));
    }
    m_log->info("scanning by {} on {}", m_use_fildes ? "FILDES" : "INSTREAM",
                m_client->endpoint().describe());
  }

  std::optional<Endpoint> external_endpoint() const {
    if (!m_manifest.external) {
      return std::nullopt;
    }
    const auto& ext = *m_manifest.external;
    auto get = [](const std::string& var) -> std::optional<std::string> {
      if (var.empty()) {
        return std::nullopt;
      }
      auto v = env::process_getenv(var);
      if (!v || v->empty()) {
        return std::nullopt;
      }
      return v;
    };
    std::optional<std::string> addr;
    if (auto sock = get(ext.socket_env)) {
      addr = "unix:" + *sock;
    } else if (auto host = get(ext.host_env)) {
      std::string port = get(ext.port_env).value_or(ext.default_port);
      addr = "tcp:" + *host + ":" + port;
    } else if (auto port = get(ext.port_env)) {
      addr = "tcp:127.0.0.1:" + *port;
    }
    if (!addr) {
      return std::nullopt;
    }
    auto ep = parse_endpoint(*addr);
    if (!ep) {
      throw Fatal(ep.error().message);
    }
    return *ep;
  }

  asio::awaitable<void> start_service() {
    const auto& d = *m_manifest.daemon;
    if (d.socket.empty()) {
      throw Fatal(m_manifest.name + ": the clamd driver's daemon needs a \"socket\"");
    }
    prepare_daemon_files(m_manifest, m_env);
    auto ep = parse_endpoint(expand_or_throw(m_manifest, m_env, d.socket, "daemon.socket"));
    if (!ep) {
      throw Fatal(m_manifest.name + ": daemon.socket: " + ep.error().message);
    }
    m_client.emplace(m_ex, *ep);
    auto spec = daemon_service_spec(m_manifest, m_env, nullptr, {});
    auto* client = &*m_client;
    supervisor::Probe ping = [client](Clock::time_point deadline) -> asio::awaitable<Result<void>> {
      auto pong = co_await client->command("PING", deadline);
      if (pong.reply && pong.reply->message == "PONG") {
        co_return Result<void>{};
      }
      co_return make_error("no PONG: " + (pong.reply ? quote(pong.reply->message) : pong.error));
    };
    if (d.ready_probe) {
      spec.ready_probe = ping;
    }
    if (d.health_interval.count() > 0) {
      spec.health_probe = ping;
    }
    m_service.emplace(m_ex, std::move(spec));
    m_log->info("starting clamd on {}", m_client->endpoint().describe());
    auto started = co_await m_service->start();
    if (!started) {
      const auto& msg = started.error().message;
      bool missing = msg.find("not found on PATH") != std::string::npos ||
                     msg.find("cannot start") != std::string::npos;
      throw Fatal(missing ? msg + " (set " + m_env.prefix + "_PATH to clamd's folder)" : msg);
    }
  }

  asio::awaitable<void> read_versions() {
    auto out = co_await m_client->command("VERSION", Clock::now() + k_external_check);
    if (!out.reply) {
      m_log->warn("cannot read clamd's version: {}", out.error);
      co_return;
    }
    auto v = parse_version(out.reply->message);
    if (!v) {
      m_log->warn("unexpected VERSION reply: {}", out.reply->message);
      co_return;
    }
    m_versions = {};
    m_versions.engine = v->engine;
    m_versions.definitions = v->definitions;
    if (!v->definitions) {
      m_versions.note = "custom signature database: clamd reports no definition version";
    }
    add_definitions_digest(m_versions, m_manifest, m_env);
  }

  Manifest m_manifest;
  env::EngineEnv m_env;
  asio::any_io_executor m_ex;
  std::shared_ptr<spdlog::logger> m_log;
  std::optional<Client> m_client;
  std::optional<supervisor::Service> m_service; // our own clamd, if we run it
  EngineVersions m_versions;
  bool m_use_fildes = false;
  std::shared_ptr<Switch> m_switch; // the last reload's, null before any
  std::vector<std::weak_ptr<asio::steady_timer>> m_poll_waiters;
};

} // namespace

std::unique_ptr<Engine> make_clamd_engine(Manifest manifest, env::EngineEnv env,
                                          asio::any_io_executor ex) {
  return std::make_unique<ClamdEngine>(std::move(manifest), std::move(env), std::move(ex));
}

} // namespace pss::engine::clamd

#include "engine/clamd/engine.hpp"

#include "engine/clamd/client.hpp"
#include "env/expand.hpp"
#include "process/child.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace pss::engine::clamd {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto k_ping_timeout = 2s;       // per readiness probe
constexpr auto k_external_check = 10s;    // PING of a clamd somebody else runs
constexpr auto k_first_probe_delay = 5ms; // readiness polling starts fast...
constexpr auto k_max_probe_delay = 250ms; // ...and backs off to this

using process::sleep_for;

class ClamdEngine final : public Engine {
public:
  ClamdEngine(Manifest m, env::EngineEnv e, asio::any_io_executor ex)
      : m_manifest(std::move(m)), m_env(std::move(e)), m_ex(std::move(ex)),
        m_log(log::get(m_manifest.name)) {}

  ~ClamdEngine() override = default; // a daemon still running is killed by ~Child

  const Manifest& manifest() const override { return m_manifest; }
  EngineVersions versions() const override { return m_versions; }

  asio::awaitable<void> start() override {
    if (auto ep = external_endpoint()) {
      m_client.emplace(m_ex, *ep);
      auto pong = co_await m_client->command("PING", Clock::now() + k_external_check);
      if (!pong.reply || pong.reply->message != "PONG") {
        throw Fatal("clamd at " + ep->describe() +
                    " does not answer PING: " + (pong.reply ? pong.reply->message : pong.error));
      }
      m_log->info("using clamd at {}", ep->describe());
    } else if (m_manifest.daemon) {
      co_await start_daemon();
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
    if (m_failed) {
      co_return model::Analysis::unknown_because(m_failure);
    }
    int generation = m_generation;
    Outcome out = co_await transfer(artifact, deadline);
    if (!out.reply && out.connection_lost && Clock::now() < deadline) {
      // Connection loss is retried once, on a restarted clamd if ours died.
      m_log->warn("{}; retrying once", out.error);
      if (m_daemon) {
        co_await recover(generation, deadline);
        if (m_failed) {
          co_return model::Analysis::unknown_because(m_failure);
        }
      }
      out = co_await transfer(artifact, deadline);
    }
    co_return to_analysis(out);
  }

  asio::awaitable<CommandOutput> run_command(const std::string& name,
                                             const std::vector<std::string>& args) override {
    co_return co_await run_manifest_command(m_ex, m_manifest, m_env, name, args, nullptr);
  }

  asio::awaitable<void> stop() override {
    if (m_daemon && m_daemon->running()) {
      int pid = m_daemon->pid();
      auto status = co_await m_daemon->stop(m_manifest.daemon->stop_timeout);
      m_log->info("clamd (pid {}) stopped: {}", pid, status.describe());
    }
    m_daemon.reset();
  }

private:
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

  std::string expand_or_throw(const std::string& text, const std::string& what) const {
    auto r = env::expand(text, [this](std::string_view n) { return m_env.lookup(n); });
    if (!r) {
      throw Fatal(m_manifest.name + ": " + what + ": " + r.error().message);
    }
    return *r;
  }

  void prepare_files() {
    std::string warning;
    if (auto r = env::prepare_runtime_dir(m_env, warning); !r) {
      throw Fatal(r.error().message);
    }
    if (!warning.empty()) {
      m_log->warn("{}", warning);
    }
    const auto& d = *m_manifest.daemon;
    for (const auto& dir : d.dirs) {
      auto path = expand_or_throw(dir, "daemon.dirs");
      if (auto r = env::check_private_dir(path, true); !r) {
        throw Fatal(r.error().message);
      }
    }
    for (const auto& [tmpl, target] : d.config) {
      std::ifstream in(m_manifest.dir / tmpl);
      if (!in) {
        throw Fatal(errno_error("cannot read config template", m_manifest.dir / tmpl).message);
      }
      std::stringstream text;
      text << in.rdbuf();
      std::string rendered = expand_or_throw(text.str(), tmpl);
      std::string out_path = expand_or_throw(target, "daemon.config");
      UniqueFd fd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd || ::write(fd.get(), rendered.data(), rendered.size()) !=
                     static_cast<ssize_t>(rendered.size())) {
        throw Fatal(errno_error("cannot write config", out_path).message);
      }
    }
  }

  asio::awaitable<void> start_daemon() {
    const auto& d = *m_manifest.daemon;
    if (!m_client) {
      prepare_files();
      auto ep = parse_endpoint(expand_or_throw(d.socket, "daemon.socket"));
      if (!ep) {
        throw Fatal(m_manifest.name + ": daemon.socket: " + ep.error().message);
      }
      m_client.emplace(m_ex, *ep);
    }
    process::SpawnSpec spec;
    for (const auto& a : d.argv) {
      spec.argv.push_back(expand_or_throw(a, "daemon.argv"));
    }
    spec.name = "clamd";
    auto started = Clock::now();
    auto child = process::Child::spawn(m_ex, spec);
    if (!child) {
      throw Fatal(child.error().message + " (set " + m_env.prefix + "_PATH to clamd's folder)");
    }
    m_daemon = std::move(*child);
    m_log->info("starting clamd (pid {}) on {}", m_daemon->pid(), m_client->endpoint().describe());

    auto deadline = started + d.ready_timeout;
    Clock::duration delay = k_first_probe_delay;
    for (;;) {
      if (auto status = m_daemon->exit_status()) {
        co_await sleep_for(m_ex, 50ms); // let the output pump catch the last lines
        throw Fatal("clamd " + status->describe() +
                    " before it was ready; its last output:" + m_daemon->output_tail_text());
      }
      auto probe_deadline = std::min(deadline, Clock::now() + Clock::duration(k_ping_timeout));
      auto pong = co_await m_client->command("PING", probe_deadline);
      if (pong.reply && pong.reply->message == "PONG") {
        break;
      }
      if (Clock::now() >= deadline) {
        co_await m_daemon->stop(d.stop_timeout);
        throw Fatal("clamd was not ready within " +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::seconds>(d.ready_timeout).count()) +
                    " s; its last output:" + m_daemon->output_tail_text());
      }
      co_await sleep_for(m_ex, delay);
      delay = std::min<Clock::duration>(delay * 2, k_max_probe_delay);
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    m_log->info("clamd (pid {}) ready in {} ms", m_daemon->pid(), ms.count());
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
    m_versions.engine = v->engine;
    m_versions.definitions = v->definitions;
    if (!v->definitions) {
      m_versions.note = "custom signature database: clamd reports no definition version";
    }
  }

  // Restarts our clamd if it died since `generation`; waits if another scan is already
  // restarting it. Gives up (engine failed) after max_restarts.
  asio::awaitable<void> recover(int generation, Clock::time_point deadline) {
    while (m_restarting && Clock::now() < deadline) {
      co_await sleep_for(m_ex, 20ms);
    }
    if (generation != m_generation || m_failed || m_daemon->running()) {
      co_return;
    }
    auto status = m_daemon->exit_status();
    if (m_restarts >= m_manifest.daemon->max_restarts) {
      m_failed = true;
      m_failure = "engine failed: clamd died " + std::to_string(m_restarts + 1) +
                  " times (last: " + (status ? status->describe() : "unknown") + ")";
      m_log->error("{}", m_failure);
      co_return;
    }
    ++m_restarts;
    m_restarting = true;
    m_log->warn("clamd (pid {}) {}; restarting ({}/{})", m_daemon->pid(),
                status ? status->describe() : "died", m_restarts, m_manifest.daemon->max_restarts);
    try {
      co_await start_daemon();
      ++m_generation;
    } catch (const std::exception& e) {
      m_failed = true;
      m_failure = std::string("engine failed: cannot restart clamd: ") + e.what();
      m_log->error("{}", m_failure);
    }
    m_restarting = false;
  }

  model::Analysis to_analysis(const Outcome& out) const {
    if (!out.reply) {
      return model::Analysis::unknown_because(out.error);
    }
    const Reply& r = *out.reply;
    model::Analysis a;
    switch (r.kind) {
    case Reply::Kind::clean:
      a.result = model::Verdict::benign;
      break;
    case Reply::Kind::found:
      a.result = model::Verdict::malicious;
      a.result_name = r.name;
      a.metadata["signature"] = r.raw_name;
      break;
    case Reply::Kind::error:
      a = model::Analysis::unknown_because("clamd: " + r.message);
      break;
    case Reply::Kind::timeout:
    case Reply::Kind::unknown_command:
    case Reply::Kind::other:
      a = model::Analysis::unknown_because("clamd: unexpected reply " + quote(r.message));
      break;
    }
    return a;
  }

  Manifest m_manifest;
  env::EngineEnv m_env;
  asio::any_io_executor m_ex;
  std::shared_ptr<spdlog::logger> m_log;
  std::optional<Client> m_client;
  std::unique_ptr<process::Child> m_daemon;
  EngineVersions m_versions;
  int m_generation = 0;
  int m_restarts = 0;
  bool m_restarting = false;
  bool m_failed = false;
  bool m_use_fildes = false;
  std::string m_failure;
};

} // namespace

std::unique_ptr<Engine> make_clamd_engine(Manifest manifest, env::EngineEnv env,
                                          asio::any_io_executor ex) {
  return std::make_unique<ClamdEngine>(std::move(manifest), std::move(env), std::move(ex));
}

} // namespace pss::engine::clamd

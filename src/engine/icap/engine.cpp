#include "engine/icap/engine.hpp"

#include "engine/daemon.hpp"
#include "engine/icap/client.hpp"
#include "engine/icap/options.hpp"
#include "engine/icap/spec.hpp"
#include "engine/icap/verdict.hpp"
#include "env/expand.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"
#include "util/size.hpp"

#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace pss::engine::icap {

namespace asio = boost::asio;
namespace wire = ::pss::icap;
using namespace std::chrono_literals;

namespace {

constexpr auto k_options_timeout = 30s; // OPTIONS at start and at each refresh
constexpr auto k_death_notice = 100ms;  // a lost connection to the time its cause is known

class IcapEngine final : public Engine {
public:
  IcapEngine(Manifest m, env::EngineEnv e, asio::any_io_executor ex)
      : m_manifest(std::move(m)), m_env(std::move(e)), m_ex(std::move(ex)),
        m_log(log::get(m_manifest.name)) {
    m_where = (m_manifest.dir / "engine.json").native();
    auto it = m_manifest.raw.find("icap");
    if (it == m_manifest.raw.end()) {
      throw Fatal(m_where + ": the icap driver needs an \"icap\" section (its url and the "
                            "headers that name threats)");
    }
    auto spec = parse_spec(*it, m_where);
    if (!spec) {
      throw Fatal(spec.error().message);
    }
    m_spec = std::move(*spec);
    if (m_manifest.runtime != "native") {
      throw Fatal(m_where + ": field 'runtime': the icap driver talks to a server over TCP; "
                            "its runtime is native");
    }
    if (m_manifest.setup) {
      throw Fatal(m_where + ": the icap driver runs no \"setup\" (the ICAP server reads its "
                            "definitions itself)");
    }
    if (m_manifest.daemon && m_manifest.daemon->instances != "1") {
      throw Fatal(m_where + ": field 'daemon.instances': the icap driver runs one server");
    }
    auto max =
        env::expand(m_spec.max_connections, [this](std::string_view n) { return m_env.lookup(n); });
    if (!max) {
      throw Fatal(m_where + ": field 'icap.max_connections': " + max.error().message);
    }
    auto n = parse_max_connections(*max);
    if (!n) {
      throw Fatal(m_where + ": field 'icap.max_connections' " + n.error().message +
                  (m_spec.max_connections != *max ? " (from " + m_spec.max_connections + ")" : ""));
    }
    m_max_connections = *n;
  }

  ~IcapEngine() override = default; // a daemon still running is killed by ~Service

  const Manifest& manifest() const override { return m_manifest; }
  bool uses_sha256() const override { return true; } // the request line names the body by it
  const env::EngineEnv& env() const override { return m_env; }
  EngineVersions versions() const override { return m_versions; }

  std::optional<supervisor::ServiceStatus> service_status() const override {
    if (!m_service) {
      return std::nullopt;
    }
    return m_service->status();
  }

  asio::awaitable<void> start() override {
    if (m_manifest.daemon) {
      co_await start_service();
    } else {
      m_client.emplace(m_ex, external_url(), m_max_connections, m_manifest.name);
      auto options = co_await read_options(Clock::now() + k_options_timeout);
      if (!options) {
        throw Fatal(options.error().message);
      }
    }
    m_log->info("using ICAP service {} ({}; preview {}, 204 {}, at most {} connections)", server(),
                m_versions.definitions ? "ISTag " + m_options.istag : "no ISTag",
                m_options.preview ? std::to_string(*m_options.preview) + " bytes" : "none",
                m_options.allow_204 ? "allowed" : "not allowed", m_client->limit());
  }

  asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                        Clock::time_point deadline) override {
    if (artifact.size > m_spec.max_size) {
      auto a = model::Analysis::unknown_because(
          "too large: " + std::to_string(artifact.size) + " bytes, over icap.max_size (" +
          format_size(m_spec.max_size) + "); not sent to ICAP server " + server());
      a.metadata["skipped"] = "over icap.max_size";
      co_return a;
    }
    deadline = std::min(deadline, Clock::now() + m_spec.timeout);
    Answer answer;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (m_service) {
        auto gen = co_await m_service->acquire(deadline);
        if (!gen) {
          co_return model::Analysis::unknown_because(gen.error().message);
        }
      }
      co_await refresh_options_if_due(deadline);
      RespmodRequest req;
      req.file = artifact.path;
      req.size = artifact.size;
      req.sha256 = artifact.sha256;
      req.allow_204 = m_options.allow_204;
      if (m_spec.preview) {
        req.preview = m_options.preview;
      }
      for (const auto& [k, v] : m_spec.request_headers) {
        req.extra.add(k, v);
      }
      answer = co_await m_client->respmod(req, deadline);
      // Our own server died under the scan: its restart is waited for, and the scan sent again.
      if (answer.response || !m_service || !answer.connection_lost || Clock::now() >= deadline) {
        break;
      }
      m_log->warn("{}; retrying once", answer.error);
      co_await process::sleep_for(m_ex, k_death_notice);
    }
    if (!answer.response) {
      co_return model::Analysis::unknown_because(answer.error);
    }
    const wire::Response& r = *answer.response;
    auto a = to_analysis(r, m_spec, server());
    // The tag of the service that answered: new definitions change it (RFC 3507 §4.7).
    std::string tag = istag_of(r.fields);
    if (!tag.empty() && tag != m_options.istag && !m_refresh_due) {
      m_log->info("ISTag changed from {} to {}: reading OPTIONS again", m_options.istag, tag);
      m_refresh_due = true;
    }
    // The versions this answer states (a product may name them in every answer), the
    // definitions only from where OPTIONS gave them: the ISTag, or the version header.
    auto v = versions_of(r.fields, m_spec);
    if (v.engine) {
      a.analysis_engine_version = v.engine;
    }
    if (v.definitions && m_definitions_from_istag == !v.note.empty()) {
      a.analysis_definition_version = v.definitions;
    }
    co_return a;
  }

  // The server reads its own definitions: its versions (OPTIONS) are read again.
  asio::awaitable<Result<void>> reload() override {
    auto options = co_await read_options(Clock::now() + k_options_timeout);
    if (!options) {
      co_return options.error();
    }
    co_return Result<void>{};
  }

  asio::awaitable<void> stop() override {
    if (m_client) {
      m_client->close_idle();
    }
    if (m_service) {
      co_await m_service->stop();
    }
  }

  asio::awaitable<CommandOutput> run_command(const std::string& name,
                                             const std::vector<std::string>& args) override {
    co_return co_await run_manifest_command(m_ex, m_manifest, m_env, name, args, nullptr);
  }

private:
  std::string server() const { return m_client ? m_client->url().text() : m_spec.url; }

  wire::Url parse_or_throw(const std::string& url) const {
    auto u = wire::parse_url(url);
    if (!u) {
      throw Fatal(m_where + ": field 'icap.url': " + u.error().message);
    }
    return *u;
  }

  // The URL of somebody else's server: icap.url expanded; unset or empty is an error saying
  // which variable to set.
  wire::Url external_url() const {
    const std::string var = m_env.prefix + "_URL";
    auto url = env::expand(m_spec.url, [this](std::string_view n) { return m_env.lookup(n); });
    if (!url || url->empty()) {
      throw NotConfigured("no ICAP server to use: set " + var +
                          "=icap://HOST:PORT/SERVICE (the manifest's icap.url is " +
                          quote(m_spec.url) + (url ? "" : ": " + url.error().message) +
                          "), or give the manifest a \"daemon\" section");
    }
    return parse_or_throw(*url);
  }

  // OPTIONS: what the server allows (preview, 204, connections) and its versions.
  asio::awaitable<Result<void>> read_options(Clock::time_point deadline) {
    auto answer = co_await m_client->options(deadline);
    if (!answer.response) {
      co_return make_error(answer.error);
    }
    auto options = parse_options(*answer.response, server());
    if (!options) {
      co_return options.error();
    }
    m_options = std::move(*options);
    m_client->set_limit(
        std::min(m_max_connections, m_options.max_connections.value_or(m_max_connections)));
    // A server that gives no TTL is asked again only when its ISTag changes.
    m_options_expire =
        m_options.ttl.count() > 0 ? Clock::now() + m_options.ttl : Clock::time_point::max();
    m_refresh_due = false;
    m_versions = versions_of(m_options.fields, m_spec);
    m_definitions_from_istag = !m_versions.note.empty();
    co_return Result<void>{};
  }

  // Options-TTL passed, or an answer carried a new ISTag: OPTIONS again, one scan at a time
  // (the others go on with what is known). A failure keeps the old options; the next scan
  // tries again.
  asio::awaitable<void> refresh_options_if_due(Clock::time_point deadline) {
    if ((!m_refresh_due && Clock::now() < m_options_expire) || m_refreshing) {
      co_return;
    }
    m_refreshing = true;
    auto r = co_await read_options(deadline);
    m_refreshing = false;
    if (!r) {
      m_log->warn("cannot refresh the service's OPTIONS: {}", r.error().message);
    }
  }

  asio::awaitable<void> start_service() {
    prepare_daemon_files(m_manifest, m_env);
    // Checked now, before anything starts: a URL that does not parse once {port} is known.
    parse_or_throw(expand_or_throw(m_manifest, m_env, m_spec.url, "icap.url", {{"port", "1"}}));
    m_client.emplace(m_ex, wire::Url{}, m_max_connections, m_manifest.name);
    auto placeholders = [this]() -> std::map<std::string, std::string> {
      auto port = free_loopback_port();
      if (!port) {
        throw Fatal(port.error().message);
      }
      std::map<std::string, std::string> ph{{"port", std::to_string(*port)}};
      render_configs(ph); // a config file may name {port}: c-icap takes its port only there
      m_client->set_url(
          parse_or_throw(expand_or_throw(m_manifest, m_env, m_spec.url, "icap.url", ph)));
      return ph;
    };
    auto spec = daemon_service_spec(m_manifest, m_env, nullptr, placeholders);
    supervisor::Probe probe = [this](Clock::time_point deadline) -> asio::awaitable<Result<void>> {
      co_return co_await read_options(deadline);
    };
    if (m_manifest.daemon->ready_probe) {
      spec.ready_probe = probe;
    }
    if (m_manifest.daemon->health_interval.count() > 0) {
      spec.health_probe = probe;
    }
    m_service.emplace(m_ex, std::move(spec));
    auto started = co_await m_service->start();
    if (!started) {
      throw Fatal(started.error().message);
    }
    if (!m_manifest.daemon->ready_probe) { // readiness by connection: OPTIONS now
      auto options = co_await read_options(Clock::now() + k_options_timeout);
      if (!options) {
        throw Fatal(options.error().message);
      }
    }
  }

  // daemon.config rendered again with this start's placeholders ({port}).
  void render_configs(const std::map<std::string, std::string>& ph) const {
    for (const auto& [tmpl, target] : m_manifest.daemon->config) {
      std::ifstream in(m_manifest.dir / tmpl);
      if (!in) {
        throw Fatal(errno_error("cannot read config template", m_manifest.dir / tmpl).message);
      }
      std::stringstream text;
      text << in.rdbuf();
      std::string rendered = expand_or_throw(m_manifest, m_env, text.str(), tmpl, ph);
      std::string out_path = expand_or_throw(m_manifest, m_env, target, "daemon.config", ph);
      UniqueFd fd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd || ::write(fd.get(), rendered.data(), rendered.size()) !=
                     static_cast<ssize_t>(rendered.size())) {
        throw Fatal(errno_error("cannot write config", out_path).message);
      }
    }
  }

  Manifest m_manifest;
  env::EngineEnv m_env;
  asio::any_io_executor m_ex;
  std::shared_ptr<spdlog::logger> m_log;
  std::string m_where;
  Spec m_spec;
  int m_max_connections = 8;
  std::optional<Client> m_client;
  std::optional<supervisor::Service> m_service; // our own server, if we run it
  Options m_options;
  Clock::time_point m_options_expire = Clock::time_point::max();
  bool m_refresh_due = false;
  bool m_refreshing = false;
  bool m_definitions_from_istag = false;
  EngineVersions m_versions;
};

} // namespace

std::unique_ptr<Engine> make_icap_engine(Manifest manifest, env::EngineEnv env,
                                         asio::any_io_executor ex) {
  return std::make_unique<IcapEngine>(std::move(manifest), std::move(env), std::move(ex));
}

} // namespace pss::engine::icap

#include "engine/jsonrpc/engine.hpp"

#include "engine/daemon.hpp"
#include "engine/jsonrpc/channel.hpp"
#include "engine/jsonrpc/spec.hpp"
#include "env/expand.hpp"
#include "util/log.hpp"
#include "wine/runtime.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

namespace pss::engine::jsonrpc {

namespace asio = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr auto k_start_call = 30s;     // version call after start
constexpr auto k_death_notice = 100ms; // a lost connection to the time its cause is known

std::string seconds_text(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s",
                std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0);
  return buf;
}

class JsonRpcEngine final : public Engine {
public:
  JsonRpcEngine(Manifest m, env::EngineEnv e, asio::any_io_executor ex)
      : m_manifest(std::move(m)), m_env(std::move(e)), m_ex(std::move(ex)),
        m_log(log::get(m_manifest.name)) {
    auto where = (m_manifest.dir / "engine.json").native();
    if (!m_manifest.daemon) {
      throw Fatal(where + ": the jsonrpc driver needs a \"daemon\" section (the server to run)");
    }
    if (!m_manifest.raw.contains("jsonrpc")) {
      throw Fatal(where + ": the jsonrpc driver needs a \"jsonrpc\" section");
    }
    nlohmann::json section = m_manifest.raw["jsonrpc"];
    // The code page may follow a variable (the same one the server's argv passes on).
    if (section.contains("encoding") && section["encoding"].is_string()) {
      auto enc = env::expand(section["encoding"].get<std::string>(),
                             [this](std::string_view n) { return m_env.lookup(n); });
      if (!enc) {
        throw Fatal(where + " jsonrpc: field 'encoding': " + enc.error().message);
      }
      section["encoding"] = *enc;
    }
    auto spec = parse_spec(section, where + " jsonrpc");
    if (!spec) {
      throw Fatal(spec.error().message);
    }
    m_spec = std::move(*spec);
    m_stdio = m_spec.transport == "stdio";
    // One pipe pair carries one call at a time.
    m_limit = m_stdio ? 1 : m_manifest.daemon->concurrency;
    if (m_manifest.runtime == "wine") {
      m_wine.emplace(m_env);
    }
  }

  const Manifest& manifest() const override { return m_manifest; }
  const env::EngineEnv& env() const override { return m_env; }
  const wine::Runtime* wine_runtime() const override { return m_wine ? &*m_wine : nullptr; }
  EngineVersions versions() const override { return m_versions; }

  std::optional<supervisor::ServiceStatus> service_status() const override {
    if (!m_service) {
      return std::nullopt;
    }
    return m_service->status();
  }

  asio::awaitable<void> start() override {
    if (m_wine) {
      co_await m_wine->start(m_ex);
    }
    prepare_daemon_files(m_manifest, m_env);
    auto spec = daemon_service_spec(m_manifest, m_env, m_wine ? &*m_wine : nullptr,
                                    [this] { return placeholders(); });
    const auto& d = *m_manifest.daemon;
    if (m_stdio) {
      auto base = spec.command;
      spec.command = [base]() -> Result<process::SpawnSpec> {
        auto r = base();
        if (r) {
          r->stdio_pipes = true;
        }
        return r;
      };
      spec.on_spawn = [this](process::Child& child, int gen) {
        m_idle.clear();
        m_idle_gen = gen;
        m_idle.push_back(
            Channel::over_pipes(m_ex, child.take_stdin(), child.take_stdout_pipe(), m_spec.wire));
      };
    }
    if (d.ready_probe && (m_spec.ping || !m_stdio)) {
      spec.ready_probe = [this](Clock::time_point deadline) { return probe(deadline, false); };
    }
    if (d.health_interval.count() > 0 && m_spec.ping) {
      spec.health_probe = [this](Clock::time_point deadline) { return probe(deadline, true); };
    }
    if (m_spec.shutdown) {
      spec.shutdown = [this](Clock::time_point deadline) { return shutdown(deadline); };
    }
    m_program = spec.program;
    m_service.emplace(m_ex, std::move(spec));
    auto started = co_await m_service->start();
    if (!started) {
      throw Fatal(started.error().message);
    }
    co_await read_versions();
  }

  asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                        Clock::time_point deadline) override {
    auto ph = artifact_placeholders(artifact);
    auto params = expand_params(m_spec.scan.params, ph);
    if (!params) {
      co_return model::Analysis::unknown_because(params.error().message);
    }
    auto started = Clock::now();
    if (!co_await take_slot(deadline)) {
      co_return model::Analysis::unknown_because("timeout: no free slot on " + m_program +
                                                 " within " + seconds_text(deadline - started) +
                                                 " (concurrency " + std::to_string(m_limit) + ")");
    }
    SlotGuard guard{this};
    std::string first_loss;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto gen = co_await m_service->acquire(deadline);
      if (!gen) {
        co_return model::Analysis::unknown_because(first_loss.empty() ? gen.error().message
                                                                      : first_loss + "; then " +
                                                                            gen.error().message);
      }
      CallResult r = co_await call(*gen, m_spec.scan.name, *params, deadline);
      switch (r.status) {
      case CallResult::Status::ok:
        co_return to_analysis(r.result);
      case CallResult::Status::rpc_error:
        co_return model::Analysis::unknown_because(m_program + ": " + r.error);
      case CallResult::Status::timeout: {
        auto why = "timeout: " + m_program + " did not answer the scan within " +
                   seconds_text(Clock::now() - started);
        m_service->report_broken(*gen, why);
        co_return model::Analysis::unknown_because(why);
      }
      case CallResult::Status::bad_reply: // a dying server's last words (winedbg's report
                                          // on stdio), or a broken one: restart, retry once
      case CallResult::Status::lost:
        if (r.status == CallResult::Status::bad_reply) {
          r.error = "garbage instead of an answer: " + r.error;
        }
        if (!first_loss.empty() || Clock::now() >= deadline) {
          co_return model::Analysis::unknown_because(
              m_program + " failed the scan twice: " + first_loss + "; then " + r.error);
        }
        first_loss = r.error;
        m_log->warn("{}: {}; retrying once", artifact.path.filename().string(), r.error);
        m_service->report_broken(*gen, "a scan failed: " + r.error);
        co_await process::sleep_for(m_ex, k_death_notice);
        break;
      }
    }
    co_return model::Analysis::unknown_because(m_program + ": " + first_loss);
  }

  asio::awaitable<CommandOutput> run_command(const std::string& name,
                                             const std::vector<std::string>& args) override {
    co_return co_await run_manifest_command(m_ex, m_manifest, m_env, name, args,
                                            m_wine ? &*m_wine : nullptr);
  }

  asio::awaitable<void> stop() override {
    if (m_service) {
      co_await m_service->stop();
    }
    m_idle.clear();
    if (m_wine) {
      co_await m_wine->stop(); // wineserver -k: nothing of the engine's is left in its prefix
    }
  }

private:
  struct SlotGuard {
    JsonRpcEngine* e;
    ~SlotGuard() { e->release_slot(); }
  };

  std::map<std::string, std::string> placeholders() {
    if (m_spec.port.find("{port}") != std::string::npos) {
      auto p = free_loopback_port();
      if (!p) {
        throw Fatal(p.error().message);
      }
      m_port = *p;
      return {{"port", std::to_string(*p)}};
    }
    return {};
  }

  Result<std::uint16_t> resolve_port() const {
    if (m_spec.port.find("{port}") != std::string::npos) {
      return m_port;
    }
    auto text = env::expand(m_spec.port, [this](std::string_view n) { return m_env.lookup(n); });
    if (!text) {
      return text.error();
    }
    unsigned v = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || p != text->data() + text->size() || v == 0 || v > 65535) {
      return make_error(m_manifest.name + ": jsonrpc.port: not a port number: " + quote(*text));
    }
    return static_cast<std::uint16_t>(v);
  }

  Result<json> expand_params(const json& tmpl, const std::map<std::string, std::string>& ph) const {
    if (tmpl.is_string()) {
      auto r = env::expand(
          tmpl.get<std::string>(), [this](std::string_view n) { return m_env.lookup(n); }, ph);
      if (!r) {
        return make_error(m_manifest.name + ": jsonrpc params: " + r.error().message);
      }
      return json(*r);
    }
    if (tmpl.is_object() || tmpl.is_array()) {
      json out = tmpl;
      for (auto& [k, v] : out.items()) {
        v = PSS_TRY(expand_params(v, ph));
      }
      return out;
    }
    return tmpl;
  }

  // Scans (and probes) at once against the server: the manifest's concurrency.
  asio::awaitable<bool> take_slot(Clock::time_point deadline) {
    while (m_limit > 0 && m_in_use >= m_limit) {
      if (Clock::now() >= deadline) {
        co_return false;
      }
      auto t = std::make_shared<asio::steady_timer>(m_ex, deadline);
      m_slot_waiters.push_back(t);
      co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
    }
    ++m_in_use;
    co_return true;
  }

  void release_slot() {
    --m_in_use;
    for (auto& w : m_slot_waiters) {
      if (auto t = w.lock()) {
        t->cancel();
      }
    }
    m_slot_waiters.clear();
  }

  // One call on a channel of generation `gen`: an idle one, or a new connection.
  asio::awaitable<CallResult> call(int gen, const std::string& method, const json& params,
                                   Clock::time_point deadline) {
    std::unique_ptr<Channel> ch;
    if (m_idle_gen == gen && !m_idle.empty()) {
      ch = std::move(m_idle.back());
      m_idle.pop_back();
    } else if (m_stdio) {
      CallResult r;
      r.error = "the stdio channel of " + m_program + " is gone";
      co_return r;
    } else {
      auto port = resolve_port();
      if (!port) {
        CallResult r;
        r.error = port.error().message;
        co_return r;
      }
      auto c = co_await Channel::connect(m_ex, m_spec.host, *port, m_spec.wire, deadline);
      if (!c) {
        CallResult r;
        r.status =
            Clock::now() >= deadline ? CallResult::Status::timeout : CallResult::Status::lost;
        r.error = c.error().message;
        co_return r;
      }
      ch = std::move(*c);
    }
    CallResult r = co_await ch->call(method, params, deadline);
    if (ch->usable() && gen == m_service->status().generation) {
      if (m_idle_gen != gen) {
        m_idle.clear();
        m_idle_gen = gen;
      }
      m_idle.push_back(std::move(ch));
    }
    co_return r;
  }

  // Readiness: a ping (or, without one, a TCP connection accepted). Health: the same, but a
  // server whose every slot is busy scanning is left alone: those scans' deadlines watch it.
  asio::awaitable<Result<void>> probe(Clock::time_point deadline, bool health) {
    int gen = m_service->status().generation;
    if (health && m_limit > 0 && m_in_use >= m_limit) {
      co_return Result<void>{};
    }
    if (!m_spec.ping) {
      auto port = resolve_port();
      if (!port) {
        co_return port.error();
      }
      auto c = co_await Channel::connect(m_ex, m_spec.host, *port, m_spec.wire, deadline);
      if (!c) {
        co_return c.error();
      }
      co_return Result<void>{};
    }
    ++m_in_use; // not through take_slot: a probe must not queue behind scans
    SlotGuard guard{this};
    auto r = co_await call(gen, m_spec.ping->name, m_spec.ping->params, deadline);
    if (r.status != CallResult::Status::ok) {
      co_return make_error(m_spec.ping->name + ": " + r.error);
    }
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> shutdown(Clock::time_point deadline) {
    int gen = m_service->status().generation;
    auto r = co_await call(gen, m_spec.shutdown->name, m_spec.shutdown->params, deadline);
    if (r.status != CallResult::Status::ok) {
      co_return make_error(m_spec.shutdown->name + ": " + r.error);
    }
    co_return Result<void>{};
  }

  asio::awaitable<void> read_versions() {
    if (!m_spec.version) {
      if (m_wine) {
        m_versions.note = "the server reports no version";
      }
      co_return;
    }
    int gen = m_service->status().generation;
    ++m_in_use;
    SlotGuard guard{this};
    auto r = co_await call(gen, m_spec.version->name, m_spec.version->params,
                           Clock::now() + k_start_call);
    if (r.status != CallResult::Status::ok) {
      m_log->warn("cannot read {}'s version: {}", m_program, r.error);
      co_return;
    }
    auto str = [&](const std::string& path) -> std::optional<std::string> {
      const json* v = find_path(r.result, path);
      if (v && v->is_string()) {
        return v->get<std::string>();
      }
      if (v && v->is_number()) {
        return v->dump();
      }
      return std::nullopt;
    };
    m_versions.engine = str(m_spec.engine_version_field);
    m_versions.definitions = str(m_spec.definitions_field);
  }

  model::Analysis to_analysis(const json& result) const {
    const json* v = find_path(result, m_spec.verdict_field);
    if (v == nullptr || !v->is_string()) {
      return model::Analysis::unknown_because(m_program + ": a scan result without \"" +
                                              m_spec.verdict_field +
                                              "\": " + result.dump().substr(0, 200));
    }
    auto it = m_spec.verdicts.find(v->get<std::string>());
    if (it == m_spec.verdicts.end()) {
      return model::Analysis::unknown_because(m_program + ": an unexpected verdict " +
                                              quote(v->get<std::string>()));
    }
    model::Analysis a;
    a.result = it->second;
    if (a.result == model::Verdict::malicious || a.result == model::Verdict::suspicious) {
      if (const json* n = find_path(result, m_spec.name_field); n && n->is_string()) {
        a.result_name = n->get<std::string>();
      }
    }
    return a;
  }

  Manifest m_manifest;
  env::EngineEnv m_env;
  asio::any_io_executor m_ex;
  std::shared_ptr<spdlog::logger> m_log;
  Spec m_spec;
  bool m_stdio = false;
  std::string m_program;
  std::optional<wine::Runtime> m_wine;
  std::optional<supervisor::Service> m_service;
  EngineVersions m_versions;
  std::uint16_t m_port = 0;
  int m_limit = 0;
  int m_in_use = 0;
  std::vector<std::weak_ptr<asio::steady_timer>> m_slot_waiters;
  std::vector<std::unique_ptr<Channel>> m_idle; // connections of generation m_idle_gen
  int m_idle_gen = -1;
};

} // namespace

std::unique_ptr<Engine> make_jsonrpc_engine(Manifest manifest, env::EngineEnv env,
                                            asio::any_io_executor ex) {
  return std::make_unique<JsonRpcEngine>(std::move(manifest), std::move(env), std::move(ex));
}

} // namespace pss::engine::jsonrpc

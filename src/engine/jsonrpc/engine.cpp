#include "engine/jsonrpc/engine.hpp"

#include "engine/daemon.hpp"
#include "engine/definitions.hpp"
#include "engine/jsonrpc/channel.hpp"
#include "engine/jsonrpc/spec.hpp"
#include "engine/prepared.hpp"
#include "env/expand.hpp"
#include "util/log.hpp"
#include "wine/runtime.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <thread>
#include <tuple>

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

// One supervised server of the pool: its process (Service), port, connections and load.
struct Instance {
  int index = 0; // 1, 2, ... (stable across replacements)
  std::unique_ptr<supervisor::Service> service;
  std::uint16_t port = 0;                     // its {port}, chosen at each start
  std::vector<std::unique_ptr<Channel>> idle; // connections of generation idle_gen
  int idle_gen = -1;
  int in_use = 0;                  // scans and probes on it now
  std::map<Channel*, int> calling; // channels in a call, by the generation they reach
  bool retiring = false;           // replaced: finishes its scans, takes no more
  EngineVersions versions;         // what it said after its start
  Prepared prepared;               // the setup generation it was started with
};

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
    auto count = env::expand(m_manifest.daemon->instances,
                             [this](std::string_view n) { return m_env.lookup(n); });
    if (!count) {
      throw Fatal(where + ": field 'daemon.instances': " + count.error().message);
    }
    auto n = parse_instances(*count, static_cast<int>(std::thread::hardware_concurrency()));
    if (!n) {
      throw Fatal(where + ": field 'daemon.instances' " + n.error().message);
    }
    m_count = *n;
    if (m_count > 1 && !m_stdio && m_spec.port.find("{port}") == std::string::npos) {
      throw Fatal(where + ": field 'daemon.instances' is " + std::to_string(m_count) +
                  ", but jsonrpc.port is fixed: each instance needs its own {port}");
    }
    if (m_manifest.runtime == "wine") {
      m_wine.emplace(m_env);
    }
  }

  const Manifest& manifest() const override { return m_manifest; }
  const env::EngineEnv& env() const override { return m_env; }
  const wine::Runtime* wine_runtime() const override { return m_wine ? &*m_wine : nullptr; }
  EngineVersions versions() const override { return m_versions; }

  // The pool as one: the best state among the instances, their restarts summed.
  std::optional<supervisor::ServiceStatus> service_status() const override {
    auto all = instance_statuses();
    if (all.empty()) {
      return std::nullopt;
    }
    auto best = all.front();
    int restarts = 0;
    for (const auto& st : all) {
      restarts += st.restarts;
      if (best.state != supervisor::State::ready && st.state == supervisor::State::ready) {
        best = st;
      }
    }
    best.restarts = restarts;
    return best;
  }

  std::vector<supervisor::ServiceStatus> instance_statuses() const override {
    std::vector<supervisor::ServiceStatus> out;
    for (const auto& i : m_instances) {
      out.push_back(i->service->status());
    }
    return out;
  }

  asio::awaitable<void> start() override {
    if (m_wine) {
      co_await m_wine->start(m_ex);
    }
    prepare_daemon_files(m_manifest, m_env);
    if (m_manifest.setup) {
      auto prepared = co_await run_setup(m_ex, m_manifest, m_env, m_wine ? &*m_wine : nullptr);
      if (!prepared) {
        throw Fatal(prepared.error().message);
      }
      m_prepared = std::move(*prepared);
    }
    // One after the other: a server that cannot start fails the first, before N copies try.
    for (int i = 1; i <= m_count; ++i) {
      auto inst = make_instance(i, m_prepared);
      m_instances.push_back(inst);
      auto started = co_await start_instance(inst);
      if (!started) {
        throw Fatal(started.error().message);
      }
    }
    m_versions = m_instances.front()->versions;
    if (m_count > 1) {
      m_log->info("{} instances of {} ready", m_count, m_program);
    }
  }

  // A rolling replacement: for each instance, a new one with the definitions now on disk
  // (and a new setup generation) is started and made ready, new scans go to it, the old one
  // finishes its scans in flight and is stopped. The first new instance that is not ready
  // means the new definitions do not work: the old instances all go on serving.
  asio::awaitable<Result<void>> reload() override {
    auto prepared =
        co_await next_generation(m_ex, m_manifest, m_env, m_wine ? &*m_wine : nullptr, m_prepared);
    if (!prepared) {
      co_return prepared.error();
    }
    Prepared next = std::move(*prepared);
    for (std::size_t i = 0; i < m_instances.size(); ++i) {
      auto old = m_instances[i];
      auto fresh = make_instance(old->index, next);
      auto started = co_await start_instance(fresh);
      if (!started) {
        co_await fresh->service->stop();
        if (i == 0) {
          co_return make_error("the new instance of " + m_program +
                               " did not become ready; the old definitions go on serving: " +
                               started.error().message);
        }
        // The new definitions work (instance 1 took them): a failure here is this start's.
        m_log->error("instance {}: its replacement did not become ready ({}); it keeps the "
                     "old definitions",
                     old->index, started.error().message);
        continue;
      }
      m_instances[i] = fresh;
      if (i == 0) {
        m_versions = fresh->versions;
        m_prepared = next;
      }
      old->retiring = true;
      wake_waiters();
      co_await retire(old);
    }
    co_return Result<void>{};
  }

  asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                        Clock::time_point deadline) override {
    auto ph = artifact_placeholders(artifact);
    auto started = Clock::now();
    std::string first_loss;
    std::shared_ptr<Instance> lost_on; // the instance a first attempt lost: the retry avoids it
    // A lost scan is retried on another instance; in a pool of 3 or more, once more on a third
    // if the second dies too (instances killed one after another).
    const int attempts = m_instances.size() > 2 ? 3 : 2;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      auto inst = co_await take_slot(deadline, lost_on.get());
      if (!inst) {
        co_return model::Analysis::unknown_because(
            first_loss.empty() ? "timeout: no free slot on " + m_program + " within " +
                                     seconds_text(deadline - started) + " (concurrency " +
                                     std::to_string(m_limit) + ")"
                               : m_program + ": " + first_loss);
      }
      SlotGuard guard{this, inst};
      auto all = ph;
      if (inst->prepared) {
        all.merge(inst->prepared->placeholders());
      }
      auto params = expand_params(m_spec.scan.params, all);
      if (!params) {
        co_return model::Analysis::unknown_because(params.error().message);
      }
      auto gen = co_await inst->service->acquire(deadline);
      if (!gen) {
        if (!first_loss.empty()) {
          co_return model::Analysis::unknown_because(first_loss + "; then " + gen.error().message);
        }
        if (m_instances.size() > 1 && Clock::now() < deadline) {
          first_loss = gen.error().message; // another instance may serve
          lost_on = inst;
          continue;
        }
        co_return model::Analysis::unknown_because(gen.error().message);
      }
      CallResult r = co_await call(*inst, *gen, m_spec.scan.name, *params, deadline);
      switch (r.status) {
      case CallResult::Status::ok: {
        auto a = to_analysis(r.result);
        // The definitions of the instance that answered (a rolling update mixes them).
        if (a.result != model::Verdict::unknown && inst->versions.definitions) {
          a.analysis_definition_version = inst->versions.definitions;
        }
        co_return a;
      }
      case CallResult::Status::rpc_error:
        co_return model::Analysis::unknown_because(m_program + ": " + r.error);
      case CallResult::Status::timeout: {
        auto why = "timeout: " + m_program + " did not answer the scan within " +
                   seconds_text(Clock::now() - started);
        inst->service->report_broken(*gen, why);
        co_return model::Analysis::unknown_because(why);
      }
      case CallResult::Status::bad_reply: // a dying server's last words (winedbg's report
                                          // on stdio), or a broken one: restart, retry once
      case CallResult::Status::lost:
        if (r.status == CallResult::Status::bad_reply) {
          r.error = "garbage instead of an answer: " + r.error;
        }
        if (attempt + 1 >= attempts || Clock::now() >= deadline) {
          co_return model::Analysis::unknown_because(
              m_program + " failed the scan " + std::to_string(attempt + 1) +
              " times: " + (first_loss.empty() ? r.error : first_loss + "; then " + r.error));
        }
        if (first_loss.empty()) {
          first_loss = r.error;
        }
        lost_on = inst;
        m_log->warn("{}: {}; retrying once{}", artifact.path.filename().string(), r.error,
                    m_instances.size() > 1 ? " on another instance" : "");
        inst->service->report_broken(*gen, "a scan failed: " + r.error);
        if (m_instances.size() == 1) {
          co_await process::sleep_for(m_ex, k_death_notice);
        }
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
    for (auto& i : m_instances) {
      co_await i->service->stop();
      i->idle.clear();
    }
    for (auto& i : m_retired) {
      co_await i->service->stop();
    }
    if (m_wine) {
      co_await m_wine->stop(); // wineserver -k: nothing of the engine's is left in its prefix
    }
  }

private:
  struct SlotGuard {
    JsonRpcEngine* e;
    std::shared_ptr<Instance> inst;
    ~SlotGuard() { e->release_slot(*inst); }
  };

  std::shared_ptr<Instance> make_instance(int index, Prepared prepared) {
    auto inst = std::make_shared<Instance>();
    inst->index = index;
    inst->prepared = std::move(prepared);
    // The instance owns its service, which owns these callbacks: they hold it weakly, and a
    // probe holds it while it runs.
    std::weak_ptr<Instance> weak = inst;
    auto spec = daemon_service_spec(m_manifest, m_env, m_wine ? &*m_wine : nullptr, [this, weak] {
      auto i = weak.lock();
      return i ? placeholders(*i) : std::map<std::string, std::string>{};
    });
    const auto& d = *m_manifest.daemon;
    if (m_count > 1) {
      spec.program += " #" + std::to_string(index);
    }
    if (m_stdio) {
      auto base = spec.command;
      spec.command = [base]() -> Result<process::SpawnSpec> {
        auto r = base();
        if (r) {
          r->stdio_pipes = true;
        }
        return r;
      };
    }
    // A new process: calls still waiting on the one before end now, as lost, and are retried
    // (a killed Wine server's connections may never be reset: wineserver holds its sockets).
    spec.on_spawn = [this, weak](process::Child& child, int gen) {
      auto i = weak.lock();
      if (!i) {
        return;
      }
      for (auto& [channel, channel_gen] : i->calling) {
        if (channel_gen != gen) {
          channel->abort();
        }
      }
      if (m_stdio) {
        i->idle.clear();
        i->idle_gen = gen;
        i->idle.push_back(
            Channel::over_pipes(m_ex, child.take_stdin(), child.take_stdout_pipe(), m_spec.wire));
      }
    };
    auto probing = [this, weak](bool health) {
      return [this, weak, health](Clock::time_point deadline) {
        return probe(weak.lock(), deadline, health);
      };
    };
    if (d.ready_probe && (m_spec.ping || !m_stdio)) {
      spec.ready_probe = probing(false);
    }
    if (d.health_interval.count() > 0 && m_spec.ping) {
      spec.health_probe = probing(true);
    }
    if (m_spec.shutdown) {
      spec.shutdown = [this, weak](Clock::time_point deadline) {
        return shutdown(weak.lock(), deadline);
      };
    }
    m_program = std::filesystem::path(d.argv.front()).filename().string();
    if (m_program.find_first_of("${") != std::string::npos) {
      m_program = m_manifest.name;
    }
    inst->service = std::make_unique<supervisor::Service>(m_ex, std::move(spec));
    return inst;
  }

  // Started, ready, and its versions read.
  asio::awaitable<Result<void>> start_instance(std::shared_ptr<Instance> inst) {
    auto started = co_await inst->service->start();
    if (!started) {
      co_return started.error();
    }
    inst->versions = co_await read_versions(inst);
    co_return Result<void>{};
  }

  // A replaced instance: no new scans reach it; once those in flight are over (each ends by
  // its deadline), it is stopped.
  asio::awaitable<void> retire(std::shared_ptr<Instance> old) {
    m_retired.push_back(old);
    auto limit = Clock::now() + m_manifest.scan_timeout + std::chrono::seconds(5);
    while (old->in_use > 0 && Clock::now() < limit) {
      auto t = std::make_shared<asio::steady_timer>(m_ex, limit);
      m_slot_waiters.push_back(t);
      co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await old->service->stop();
    old->idle.clear();
    std::erase(m_retired, old);
  }

  std::map<std::string, std::string> placeholders(Instance& inst) {
    std::map<std::string, std::string> out;
    if (inst.prepared) {
      out = inst.prepared->placeholders();
    }
    if (m_spec.port.find("{port}") != std::string::npos) {
      auto p = free_loopback_port();
      if (!p) {
        throw Fatal(p.error().message);
      }
      inst.port = *p;
      out["port"] = std::to_string(*p);
    }
    return out;
  }

  Result<std::uint16_t> resolve_port(const Instance& inst) const {
    if (m_spec.port.find("{port}") != std::string::npos) {
      return inst.port;
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

  // The least busy instance with a free slot (the manifest's concurrency per instance), ready
  // ones first; `avoid` (where a first attempt was lost) only when it is the only one. Waits
  // for a slot up to `deadline`; nullptr then.
  asio::awaitable<std::shared_ptr<Instance>> take_slot(Clock::time_point deadline,
                                                       const Instance* avoid) {
    for (;;) {
      std::shared_ptr<Instance> best;
      auto rank = [avoid](const Instance& i) {
        bool ready = i.service->status().state == supervisor::State::ready;
        return std::tuple(&i == avoid, !ready, i.in_use);
      };
      for (const auto& i : m_instances) {
        if (i->retiring || (m_limit > 0 && i->in_use >= m_limit)) {
          continue;
        }
        if (!best || rank(*i) < rank(*best)) {
          best = i;
        }
      }
      if (best) {
        ++best->in_use;
        co_return best;
      }
      if (Clock::now() >= deadline) {
        co_return nullptr;
      }
      auto t = std::make_shared<asio::steady_timer>(m_ex, deadline);
      m_slot_waiters.push_back(t);
      co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  void release_slot(Instance& inst) {
    --inst.in_use;
    wake_waiters();
  }

  void wake_waiters() {
    for (auto& w : m_slot_waiters) {
      if (auto t = w.lock()) {
        t->cancel();
      }
    }
    m_slot_waiters.clear();
  }

  // One call on a channel of the instance's generation `gen`: an idle one, or a new connection.
  asio::awaitable<CallResult> call(Instance& inst, int gen, const std::string& method,
                                   const json& params, Clock::time_point deadline) {
    std::unique_ptr<Channel> ch;
    if (inst.idle_gen == gen && !inst.idle.empty()) {
      ch = std::move(inst.idle.back());
      inst.idle.pop_back();
    } else if (m_stdio) {
      CallResult r;
      r.error = "the stdio channel of " + m_program + " is gone";
      co_return r;
    } else {
      auto port = resolve_port(inst);
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
    inst.calling[ch.get()] = gen;
    struct Done {
      Instance& inst;
      Channel* ch;
      ~Done() { inst.calling.erase(ch); }
    } done{inst, ch.get()};
    CallResult r = co_await ch->call(method, params, deadline);
    if (ch->usable() && gen == inst.service->status().generation) {
      if (inst.idle_gen != gen) {
        inst.idle.clear();
        inst.idle_gen = gen;
      }
      inst.idle.push_back(std::move(ch));
    }
    co_return r;
  }

  // Readiness: a ping (or, without one, a TCP connection accepted). Health: the same, but a
  // server whose every slot is busy scanning is left alone: those scans' deadlines watch it.
  asio::awaitable<Result<void>> probe(std::shared_ptr<Instance> held, Clock::time_point deadline,
                                      bool health) {
    if (!held) {
      co_return make_error("the instance is gone");
    }
    Instance& inst = *held;
    int gen = inst.service->status().generation;
    if (health && m_limit > 0 && inst.in_use >= m_limit) {
      co_return Result<void>{};
    }
    if (!m_spec.ping) {
      auto port = resolve_port(inst);
      if (!port) {
        co_return port.error();
      }
      auto c = co_await Channel::connect(m_ex, m_spec.host, *port, m_spec.wire, deadline);
      if (!c) {
        co_return c.error();
      }
      co_return Result<void>{};
    }
    ++inst.in_use; // not through take_slot: a probe must not queue behind scans
    SlotGuard guard{this, held};
    auto r = co_await call(inst, gen, m_spec.ping->name, m_spec.ping->params, deadline);
    if (r.status != CallResult::Status::ok) {
      co_return make_error(m_spec.ping->name + ": " + r.error);
    }
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> shutdown(std::shared_ptr<Instance> held,
                                         Clock::time_point deadline) {
    if (!held) {
      co_return make_error("the instance is gone");
    }
    Instance& inst = *held;
    int gen = inst.service->status().generation;
    auto r = co_await call(inst, gen, m_spec.shutdown->name, m_spec.shutdown->params, deadline);
    if (r.status != CallResult::Status::ok) {
      co_return make_error(m_spec.shutdown->name + ": " + r.error);
    }
    co_return Result<void>{};
  }

  asio::awaitable<EngineVersions> read_versions(std::shared_ptr<Instance> held) {
    Instance& inst = *held;
    EngineVersions v;
    if (!m_spec.version) {
      if (m_wine) {
        v.note = "the server reports no version";
      }
      add_definitions_digest(v, m_manifest, m_env);
      co_return v;
    }
    int gen = inst.service->status().generation;
    ++inst.in_use;
    SlotGuard guard{this, held};
    auto r = co_await call(inst, gen, m_spec.version->name, m_spec.version->params,
                           Clock::now() + k_start_call);
    if (r.status != CallResult::Status::ok) {
      m_log->warn("cannot read {}'s version: {}", m_program, r.error);
      co_return v;
    }
    auto str = [&](const std::string& path) -> std::optional<std::string> {
      const json* f = find_path(r.result, path);
      if (f && f->is_string()) {
        return f->get<std::string>();
      }
      if (f && f->is_number()) {
        return f->dump();
      }
      return std::nullopt;
    };
    v.engine = str(m_spec.engine_version_field);
    v.definitions = str(m_spec.definitions_field);
    add_definitions_digest(v, m_manifest, m_env);
    co_return v;
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
  int m_count = 1;                                    // daemon.instances
  std::vector<std::shared_ptr<Instance>> m_instances; // serving, in index order
  std::vector<std::shared_ptr<Instance>> m_retired;   // replaced, finishing their scans
  Prepared m_prepared;
  EngineVersions m_versions;
  int m_limit = 0; // scans at once per instance
  std::vector<std::weak_ptr<asio::steady_timer>> m_slot_waiters;
};

} // namespace

std::unique_ptr<Engine> make_jsonrpc_engine(Manifest manifest, env::EngineEnv env,
                                            asio::any_io_executor ex) {
  return std::make_unique<JsonRpcEngine>(std::move(manifest), std::move(env), std::move(ex));
}

} // namespace pss::engine::jsonrpc

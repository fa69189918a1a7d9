#include "engine/oneshot/engine.hpp"

#include "engine/definitions.hpp"
#include "engine/oneshot/interpret.hpp"
#include "engine/oneshot/spec.hpp"
#include "engine/prepared.hpp"
#include "engine/sandbox.hpp"
#include "env/expand.hpp"
#include "util/log.hpp"
#include "util/text.hpp"
#include "wine/runtime.hpp"

namespace pss::engine::oneshot {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

class OneshotEngine final : public Engine {
public:
  OneshotEngine(Manifest m, env::EngineEnv e, asio::any_io_executor ex)
      : m_manifest(std::move(m)), m_env(std::move(e)), m_ex(std::move(ex)),
        m_log(log::get(m_manifest.name)) {
    const auto& raw = m_manifest.raw;
    auto where = (m_manifest.dir / "engine.json").native();
    if (!raw.contains("scan")) {
      throw Fatal(where + ": the oneshot driver needs a \"scan\" section");
    }
    m_scan = unwrap(parse_invocation(raw["scan"], where + " scan"));
    if (raw.contains("version")) {
      m_version = unwrap(parse_invocation(raw["version"], where + " version"));
    }
    if (m_manifest.runtime == "wine") {
      m_wine.emplace(m_env);
    }
  }

  const Manifest& manifest() const override { return m_manifest; }
  const env::EngineEnv& env() const override { return m_env; }
  const wine::Runtime* wine_runtime() const override { return m_wine ? &*m_wine : nullptr; }
  EngineVersions versions() const override { return m_versions; }

  asio::awaitable<void> start() override {
    // Each run gets a scratch directory in the runtime dir.
    prepare_scratch_area(m_manifest, m_env);
    if (m_wine) {
      co_await m_wine->start(m_ex);
    }
    if (m_manifest.setup) {
      auto prepared = co_await run_setup(m_ex, m_manifest, m_env, m_wine ? &*m_wine : nullptr);
      if (!prepared) {
        throw Fatal(prepared.error().message);
      }
      m_prepared = std::move(*prepared);
    }
    auto v = co_await read_versions(m_prepared);
    if (!v) {
      throw Fatal(v.error().message); // could not even start: the scanner is missing
    }
    m_versions = std::move(*v);
  }

  // A new setup generation (when the manifest has a setup) and the versions read again; scans
  // in flight keep the generation they started with.
  asio::awaitable<Result<void>> reload() override {
    auto prepared =
        co_await next_generation(m_ex, m_manifest, m_env, m_wine ? &*m_wine : nullptr, m_prepared);
    if (!prepared) {
      co_return prepared.error();
    }
    Prepared next = std::move(*prepared);
    auto v = co_await read_versions(next);
    if (!v) {
      co_return v.error();
    }
    m_prepared = std::move(next);
    m_versions = std::move(*v);
    co_return Result<void>{};
  }

  asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                        Clock::time_point deadline) override {
    auto ph = artifact_placeholders(artifact);
    Prepared prepared = m_prepared; // held until this scan ends, whatever reloads meanwhile
    auto definitions = m_versions.definitions; // ...and the version it was prepared from
    if (prepared) {
      ph.merge(prepared->placeholders());
    }
    auto own = Clock::now() + m_scan.timeout.for_size(artifact.size);
    RunResult run = co_await execute(m_scan, ph, std::min(deadline, own));
    auto a = interpret(m_scan, run, program_name());
    if (prepared && a.result != model::Verdict::unknown && definitions) {
      a.analysis_definition_version = definitions;
    }
    co_return a;
  }

  asio::awaitable<CommandOutput> run_command(const std::string& name,
                                             const std::vector<std::string>& args) override {
    co_return co_await run_manifest_command(m_ex, m_manifest, m_env, name, args,
                                            m_wine ? &*m_wine : nullptr);
  }

  asio::awaitable<void> stop() override {
    if (m_wine) {
      co_await m_wine->stop();
    }
  }

private:
  template <typename T>
  T unwrap(Result<T> r) {
    if (!r) {
      throw Fatal(r.error().message);
    }
    return std::move(*r);
  }

  std::string program_name() const {
    if (m_scan.argv.empty()) {
      return m_manifest.name;
    }
    auto a0 = std::filesystem::path(m_scan.argv[0]).filename().string();
    return a0.find('$') == std::string::npos && a0.find('{') == std::string::npos ? a0
                                                                                  : m_manifest.name;
  }

  // The version command's findings (Wine's version for a program of Wine's own), and the
  // definitions digest when it gives none. Error when the command cannot even start.
  asio::awaitable<Result<EngineVersions>> read_versions(const Prepared& prepared) {
    EngineVersions v;
    if (m_wine && !m_version) { // a Windows program of Wine's own: Wine's version is its version
      v.engine = m_wine->version();
    }
    if (m_version) {
      auto ph = prepared ? prepared->placeholders() : std::map<std::string, std::string>{};
      RunResult run = co_await execute(*m_version, ph, Clock::now() + 60s);
      if (!run.status && !run.timed_out) {
        co_return make_error(run.output);
      }
      Findings f = apply_rules(m_version->rules, run.output);
      v.engine = f.engine_version;
      v.definitions = f.definition_version;
      if (!f.engine_version) {
        m_log->warn("no version in the output of the version command: {}",
                    run.output.substr(0, 200));
      }
    }
    add_definitions_digest(v, m_manifest, m_env);
    co_return v;
  }

  // Runs one invocation to completion or deadline. A spawn failure comes back as a RunResult
  // without status, its reason in `output`.
  asio::awaitable<RunResult> execute(const Invocation& inv,
                                     const std::map<std::string, std::string>& placeholders,
                                     Clock::time_point deadline) {
    RunResult run;
    process::SpawnSpec spec;
    spec.name = m_manifest.name;
    spec.capture_stdout = true;
    spec.max_stdout = inv.max_output.value_or(m_manifest.limits.output);
    spec.kill_on_overflow = true;
    run.output_limit = spec.max_stdout;
    run.cpu_limit = m_manifest.limits.rlimits.cpu_seconds;
    for (const auto& a : inv.argv) {
      auto r = env::expand(
          a, [this](std::string_view n) { return m_env.lookup(n); }, placeholders);
      if (!r) {
        run.output = m_manifest.name + ": argv: " + r.error().message;
        co_return run;
      }
      spec.argv.push_back(std::move(*r));
    }
    // Removed when this run is over, whatever its end: declared before the child, so that
    // it outlives it.
    auto scratch = sandbox(spec, m_manifest, m_env);
    if (!scratch) {
      run.output = m_manifest.name + ": " + scratch.error().message;
      co_return run;
    }
    if (m_wine) {
      m_wine->wrap(spec);
    }
    auto child = process::Child::spawn(m_ex, spec);
    if (!child) {
      run.output = child.error().message;
      co_return run;
    }
    auto now = Clock::now();
    run.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    auto status = co_await (*child)->wait_for(std::max(std::chrono::milliseconds(0), run.timeout));
    if (!status) {
      run.timed_out = true;
      m_log->warn("{} (pid {}) timed out after {} ms: stopping its process group", program_name(),
                  (*child)->pid(), run.timeout.count());
      status = co_await (*child)->stop(inv.timeout.grace);
    }
    run.status = status;
    auto captured = co_await (*child)->take_stdout();
    (*child)->kill_stragglers(); // helpers it left behind in its group
    run.truncated = captured.truncated;
    auto enc = text::parse_encoding(inv.encoding).value_or(text::Encoding::detect);
    run.output = text::normalize(captured.bytes, enc);
    co_return run;
  }

  Manifest m_manifest;
  env::EngineEnv m_env;
  asio::any_io_executor m_ex;
  std::shared_ptr<spdlog::logger> m_log;
  Invocation m_scan;
  std::optional<Invocation> m_version;
  std::optional<wine::Runtime> m_wine;
  EngineVersions m_versions;
  Prepared m_prepared; // the setup's current generation; null without a setup
};

} // namespace

std::unique_ptr<Engine> make_oneshot_engine(Manifest manifest, env::EngineEnv env,
                                            asio::any_io_executor ex) {
  return std::make_unique<OneshotEngine>(std::move(manifest), std::move(env), std::move(ex));
}

} // namespace pss::engine::oneshot

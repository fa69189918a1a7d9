#include "engine/engine.hpp"
#include "engine/sandbox.hpp"
#include "env/expand.hpp"
#include "util/text.hpp"
#include "wine/runtime.hpp"

#include <boost/asio/this_coro.hpp>

namespace pss::engine {

namespace asio = boost::asio;

asio::awaitable<CommandOutput> Engine::run_command(const std::string& name,
                                                   const std::vector<std::string>& /*args*/) {
  CommandOutput out;
  out.output = manifest().name + " has no command " + name;
  co_return out;
}

asio::awaitable<Result<void>> Engine::reload() {
  co_return make_error(manifest().name + ": the " + manifest().driver +
                       " driver cannot take new definitions without a restart");
}

asio::awaitable<CommandOutput>
run_manifest_command(asio::any_io_executor ex, const Manifest& manifest, const env::EngineEnv& env,
                     const std::string& name, const std::vector<std::string>& args,
                     const wine::Runtime* wine) {
  auto it = manifest.commands.find(name);
  if (it == manifest.commands.end()) {
    CommandOutput out;
    out.output = manifest.name + " has no command " + name;
    co_return out;
  }
  co_return co_await run_command_spec(ex, manifest, env, it->second, "commands." + name, args,
                                      wine);
}

asio::awaitable<CommandOutput>
run_command_spec(asio::any_io_executor ex, const Manifest& manifest, const env::EngineEnv& env,
                 const CommandSpec& cmd, const std::string& what,
                 const std::vector<std::string>& args, const wine::Runtime* wine,
                 const std::map<std::string, std::string>& placeholders,
                 const std::filesystem::path& cwd, bool confine_writes) {
  CommandOutput out;
  process::SpawnSpec spec;
  spec.name = manifest.name;
  spec.capture_stdout = true;
  for (const auto& a : cmd.argv) {
    auto r = env::expand(
        a, [&env](std::string_view n) { return env.lookup(n); }, placeholders);
    if (!r) {
      out.output = manifest.name + ": " + what + ".argv: " + r.error().message;
      co_return out;
    }
    spec.argv.push_back(std::move(*r));
  }
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.max_stdout = manifest.limits.output;
  // The user's relative paths ("commands sigtool --info FILE") are relative to our cwd.
  std::error_code ec;
  spec.cwd = cwd.empty() ? std::filesystem::current_path(ec) : cwd;
  // Outlives the child (declared first): removed once the command and its group are gone.
  auto scratch = sandbox(spec, manifest, env);
  if (!scratch) {
    out.output = manifest.name + ": " + scratch.error().message;
    co_return out;
  }
  if (wine != nullptr) {
    wine->wrap(spec);
  } else if (confine_writes) { // Wine writes in its prefix and its server's folder too
    spec.write_only_beneath = {spec.cwd, scratch->path(), "/dev/null"};
  }
  auto child = process::Child::spawn(ex, spec);
  if (!child) {
    out.output = child.error().message;
    co_return out;
  }
  out.status = co_await (*child)->wait_for(cmd.timeout);
  if (!out.status) {
    co_await (*child)->stop(std::chrono::seconds(5));
    out.errors = (*child)->output_tail();
    out.output =
        what + " did not finish within " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(cmd.timeout).count()) +
        " s";
    co_return out;
  }
  auto captured = co_await (*child)->take_stdout();
  (*child)->kill_stragglers();
  out.errors = (*child)->output_tail();
  auto enc = text::parse_encoding(cmd.encoding).value_or(text::Encoding::detect);
  out.output = text::normalize(captured.bytes, enc);
  co_return out;
}

} // namespace pss::engine

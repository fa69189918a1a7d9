#include "engine/sandbox.hpp"

#include "util/log.hpp"
#include "util/temp_file.hpp"

namespace pss::engine {

namespace fs = std::filesystem;

namespace {

// Removes stale scratch directories from the engine's runtime dir (logged); no-op without one.
void remove_stale_scratch(const Manifest& manifest, const env::EngineEnv& env) {
  auto dir = env.get("RUNTIME_DIR");
  if (!dir) {
    return;
  }
  for (const auto& p : env::remove_stale_scratch(*dir)) {
    log::get(manifest.name)
        ->info("removed {}, left by an earlier pssupervise that did not end cleanly", p.native());
  }
}

} // namespace

void prepare_scratch_area(const Manifest& manifest, env::EngineEnv& env, bool warn_if_private) {
  std::string note;
  if (auto r = env::prepare_runtime_dir(env, note); !r) {
    throw Fatal(r.error().message);
  }
  if (!note.empty()) {
    log::get(manifest.name)
        ->log(warn_if_private ? spdlog::level::warn : spdlog::level::info, "{}", note);
  }
  remove_stale_scratch(manifest, env);
}

Result<env::ScratchDir> sandbox(process::SpawnSpec& spec, const Manifest& manifest,
                                const env::EngineEnv& env) {
  auto runtime = env.get("RUNTIME_DIR");
  auto scratch = env::ScratchDir::create(runtime ? fs::path(*runtime) : temp_base_dir());
  if (!scratch) {
    return scratch.error();
  }
  spec.env = env::scanner_environment(env, scratch->path(), manifest.pass_env);
  if (spec.cwd.empty()) {
    spec.cwd = scratch->path();
  }
  spec.umask = 077;
  spec.limits = manifest.limits.rlimits;
  return scratch;
}

} // namespace pss::engine

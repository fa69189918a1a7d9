// A scanner process's sandbox, as the manifest asks for it: an environment built from
// scratch (env/scanner_env.hpp), a private scratch directory (0700; its HOME, TMPDIR and
// cwd) under the engine's runtime dir, umask 077 (its files are 0600), and the manifest's
// resource limits. Used for every process of an engine (one-shot runs, daemons, commands);
// Wine adds its own variables on top (wine::Runtime::wrap).
#pragma once

#include "engine/manifest.hpp"
#include "env/engine_env.hpp"
#include "env/scanner_env.hpp"
#include "process/child.hpp"

namespace pss::engine {

// Makes the engine's runtime dir usable (see env::prepare_runtime_dir; a private one under
// the temp dir when neither it nor XDG_RUNTIME_DIR is set, logged at info level, or as a
// warning with `warn_if_private`: a daemon keeps its socket and pid file there) and removes
// the scratch directories a crashed pssupervise left in it, saying so at info level. Throws
// Fatal if the runtime dir is refused.
void prepare_scratch_area(const Manifest& manifest, env::EngineEnv& env,
                          bool warn_if_private = false);

// Fills `spec` with the sandbox (env, cwd unless set, umask, limits) and returns the scratch
// directory, to be kept until the process (and its group) is gone. Its parent is the
// engine's runtime dir, else the temp dir (a command run before any start).
Result<env::ScratchDir> sandbox(process::SpawnSpec& spec, const Manifest& manifest,
                                const env::EngineEnv& env);

} // namespace pss::engine

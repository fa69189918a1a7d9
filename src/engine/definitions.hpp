// The definitions version of an engine that reports none (a custom clamd database, yara
// rules): "custom:<the first 12 hex digits of a SHA-256>" over the files the manifest's
// "definitions.files" name. It changes exactly when a byte, a name or the set of those files
// does, and is the same on every host with the same files.
#pragma once

#include "engine/engine.hpp"
#include "engine/manifest.hpp"
#include "env/engine_env.hpp"
#include "util/error.hpp"

#include <string>

namespace pss::engine {

// Folders are walked recursively (symbolic links followed), files in byte order of their
// path relative to the entry that named them. Each file adds its relative path, a NUL, its
// size, a NUL, its bytes. Error names a missing or unreadable file.
Result<std::string> definitions_digest(const Manifest& manifest, const env::EngineEnv& env);

// Sets `v.definitions` to the digest when the engine reported none and the manifest names
// files (and says so in `v.note`); a digest that cannot be made is logged, the field left empty.
void add_definitions_digest(EngineVersions& v, const Manifest& manifest,
                            const env::EngineEnv& env);

} // namespace pss::engine

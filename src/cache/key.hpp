// What a cached answer is keyed by: the artifact's sha256, the engine, and everything else its
// answer depends on — the engine's version, its definitions version, and a digest of its
// manifest and resolved settings. An update changes the key, so it invalidates by itself.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace pss::cache {

// An engine as it answers now.
struct Identity {
  std::string engine_version;      // "" when the engine reports none
  std::string definitions_version; // never empty: an engine without one is not cached
  std::string settings;            // settings_digest()
};

// "<sha256>:<engine>:<16 hex>": readable in Redis, fixed-size past the engine name.
std::string result_key(std::string_view sha256, std::string_view engine, const Identity& id);

// SHA-256 (hex) over the manifest's text and the resolved variables, one "NAME=value" per line
// in name order. The caller leaves out what differs per run without changing answers (the
// private runtime dir).
std::string settings_digest(std::string_view manifest_json,
                            const std::map<std::string, std::string>& vars);

} // namespace pss::cache

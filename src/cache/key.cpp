#include "cache/key.hpp"

#include "util/sha256.hpp"

namespace pss::cache {

std::string result_key(std::string_view sha256, std::string_view engine, const Identity& id) {
  // Unit separators: no field can run into the next.
  std::string what = id.engine_version;
  what += '\x1f';
  what += id.definitions_version;
  what += '\x1f';
  what += id.settings;
  std::string key(sha256);
  key += ':';
  key += engine;
  key += ':';
  key += sha256_hex(what).substr(0, 16);
  return key;
}

std::string settings_digest(std::string_view manifest_json,
                            const std::map<std::string, std::string>& vars) {
  std::string text(manifest_json);
  text += '\x1e';
  for (const auto& [name, value] : vars) {
    text += name;
    text += '=';
    text += value;
    text += '\n';
  }
  return sha256_hex(text);
}

} // namespace pss::cache

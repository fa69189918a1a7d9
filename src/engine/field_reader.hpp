// Typed access to a manifest's JSON fields, with errors that name the file and the field's
// path ("engines/clamav/engine.json: field 'daemon.reload.command' must be a string").
// Every part of a manifest (the common fields and each driver's section) reads through it.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pss::engine {

struct FieldReader {
  std::string where;  // "engines/clamav/engine.json"
  std::string prefix; // "daemon.reload.": the path of the object read, for nested fields

  // The reader of the object `field` (its fields' errors say "daemon.reload.command").
  FieldReader nested(const std::string& field) const { return {where, prefix + field + "."}; }

  Error bad(const std::string& field, const std::string& what) const;

  // A missing or null field is `fallback`, or an error when `required`.
  Result<std::string> string(const nlohmann::json& j, const std::string& field, bool required,
                             std::string fallback = {}) const;
  Result<std::vector<std::string>> strings(const nlohmann::json& j, const std::string& field,
                                           bool required = false) const;
  Result<bool> boolean(const nlohmann::json& j, const std::string& field, bool fallback) const;
  // An integer from `min` to 1,000,000.
  Result<int> count(const nlohmann::json& j, const std::string& field, int fallback, int min) const;
  // A positive number of seconds, at most 1e9.
  Result<std::chrono::milliseconds> seconds(const nlohmann::json& j, const std::string& field,
                                            std::chrono::milliseconds fallback) const;
};

} // namespace pss::engine

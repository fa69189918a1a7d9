// The "jsonrpc" section of a manifest: how to reach the vendor's server and how to read its
// answers (documented in engines/README.md). The protocol is code; the methods are data.
#pragma once

#include "engine/jsonrpc/channel.hpp"
#include "model/verdict.hpp"

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pss::engine::jsonrpc {

struct Method {
  std::string name;      // the JSON-RPC method
  nlohmann::json params; // strings are templates: {path}, {nt_path}, {sha256}, ${VAR}
};

struct Spec {
  std::string transport = "tcp"; // tcp | stdio
  std::string host = "127.0.0.1";
  std::string port = "{port}"; // a number, a ${VAR} template, or {port}: a free port per start
  Wire wire;
  Method scan;
  // Where the scan result says what it found: dotted paths into the result object.
  std::string verdict_field = "verdict";
  std::map<std::string, model::Verdict> verdicts; // the server's word → ours
  std::string name_field = "name";                // the malware family
  std::optional<Method> version;
  std::string engine_version_field = "engine_version";
  std::string definitions_field = "definition_version";
  std::optional<Method> ping;     // readiness and health
  std::optional<Method> shutdown; // graceful stop
};

// Parses manifest["jsonrpc"]; `where` prefixes errors ("engines/x/engine.json jsonrpc").
Result<Spec> parse_spec(const nlohmann::json& j, const std::string& where);

// A dotted path into a JSON value ("report.verdict"); nullptr when absent.
const nlohmann::json* find_path(const nlohmann::json& j, const std::string& path);

} // namespace pss::engine::jsonrpc

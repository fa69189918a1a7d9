#include "engine/jsonrpc/spec.hpp"

#include "engine/field_reader.hpp"

namespace pss::engine::jsonrpc {

using nlohmann::json;

namespace {

// A method field: {"method": NAME, "params": {...} or [...]}.
Result<std::optional<Method>> method(const FieldReader& r, const json& j, const std::string& field,
                                     bool required) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) {
      return r.bad(field, "is missing");
    }
    return std::optional<Method>{};
  }
  if (!it->is_object() || !it->contains("method") || !(*it)["method"].is_string()) {
    return r.bad(field, "must be an object with a \"method\" name");
  }
  Method m;
  m.name = (*it)["method"].get<std::string>();
  if (auto p = it->find("params"); p != it->end()) {
    if (!p->is_object() && !p->is_array()) {
      return r.bad(field + ".params", "must be an object or an array");
    }
    m.params = *p;
  }
  return std::optional<Method>(std::move(m));
}

} // namespace

const json* find_path(const json& j, const std::string& path) {
  const json* cur = &j;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto dot = path.find('.', start);
    std::string key = path.substr(start, dot - start);
    if (!cur->is_object()) {
      return nullptr;
    }
    auto it = cur->find(key);
    if (it == cur->end()) {
      return nullptr;
    }
    cur = &*it;
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
  return cur;
}

Result<Spec> parse_spec(const json& j, const std::string& where) {
  FieldReader r{where, ""};
  if (!j.is_object()) {
    return make_error(where + ": must be an object");
  }
  Spec s;
  s.transport = PSS_TRY(r.string(j, "transport", false, s.transport));
  if (s.transport != "tcp" && s.transport != "stdio") {
    return r.bad("transport", "must be \"tcp\" or \"stdio\", not \"" + s.transport + "\"");
  }
  s.host = PSS_TRY(r.string(j, "host", false, s.host));
  if (auto it = j.find("port"); it != j.end() && it->is_number_unsigned()) {
    s.port = std::to_string(it->get<unsigned>());
  } else {
    s.port = PSS_TRY(r.string(j, "port", false, s.port));
  }
  auto framing = parse_framing(PSS_TRY(r.string(j, "framing", false, "line")));
  if (!framing) {
    return r.bad("framing", framing.error().message);
  }
  s.wire.framing = *framing;
  std::string enc = PSS_TRY(r.string(j, "encoding", false, "utf-8"));
  auto e = text::parse_encoding(enc);
  if (!e) {
    return r.bad("encoding", "must be utf-8, cp1252, utf-16le or detect, not \"" + enc + "\"");
  }
  s.wire.encoding = *e;

  s.scan = *PSS_TRY(method(r, j, "scan", true));
  const json& scan = j["scan"];
  s.verdict_field = PSS_TRY(r.string(scan, "verdict", false, s.verdict_field));
  s.name_field = PSS_TRY(r.string(scan, "name", false, s.name_field));
  auto vit = scan.find("verdicts");
  if (vit == scan.end() || !vit->is_object() || vit->empty()) {
    return r.bad("scan.verdicts", "must map the server's verdicts to ours, e.g. "
                                  "{\"infected\": \"malicious\", \"clean\": \"benign\"}");
  }
  for (const auto& [word, ours] : vit->items()) {
    auto v = ours.is_string() ? model::parse_verdict(ours.get<std::string>()) : std::nullopt;
    if (!v) {
      return r.bad("scan.verdicts." + word, "must be malicious, benign, suspicious or unknown");
    }
    s.verdicts[word] = *v;
  }

  s.version = PSS_TRY(method(r, j, "version", false));
  if (s.version) {
    const json& v = j["version"];
    s.engine_version_field = PSS_TRY(r.string(v, "engine", false, s.engine_version_field));
    s.definitions_field = PSS_TRY(r.string(v, "definitions", false, s.definitions_field));
  }
  s.ping = PSS_TRY(method(r, j, "ping", false));
  s.shutdown = PSS_TRY(method(r, j, "shutdown", false));
  return s;
}

} // namespace pss::engine::jsonrpc

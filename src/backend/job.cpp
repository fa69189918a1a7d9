#include "backend/job.hpp"

#include "util/hex.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace pss::backend {

namespace {

using nlohmann::json;

constexpr std::string_view k_bytes_key = "__pss_bytes_hex__";

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      lo = c == 0xe0 ? 0xa0 : 0x80;
      hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      lo = c == 0xf0 ? 0x90 : 0x80;
      hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
      return false;
    }
    if (s.size() - i <= n) {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if (cc < (k == 1 ? lo : 0x80) || cc > (k == 1 ? hi : 0xbf)) {
        return false;
      }
    }
    i += n + 1;
  }
  return true;
}

// Strings that are not UTF-8 become {"__pss_bytes_hex__": hex}, everywhere in the tree.
void armor(json& j) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (!valid_utf8(s)) {
      j = json{{k_bytes_key, to_hex(s)}};
    }
  } else if (j.is_structured()) {
    for (auto& v : j) {
      armor(v);
    }
  }
}

// The reverse of armor(); Error for a malformed byte string.
Result<void> unarmor(json& j) {
  if (j.is_object()) {
    if (j.size() == 1 && j.contains(k_bytes_key) && j[k_bytes_key].is_string()) {
      auto bytes = from_hex(j[k_bytes_key].get_ref<const std::string&>());
      if (!bytes) {
        return make_error(fmt::format("{}: {}", k_bytes_key, bytes.error().message));
      }
      j = std::move(*bytes);
      return {};
    }
    for (auto& v : j) {
      PSS_TRY_VOID(unarmor(v));
    }
  } else if (j.is_array()) {
    for (auto& v : j) {
      PSS_TRY_VOID(unarmor(v));
    }
  }
  return {};
}

Error field_error(std::string_view what, std::string_view field, std::string_view why) {
  return make_error(fmt::format("{} field '{}': {}", what, field, why));
}

Result<std::size_t> index_of(const json& j, std::string_view what) {
  auto it = j.find("index");
  if (it == j.end()) {
    return field_error(what, "index", "missing");
  }
  if (!it->is_number_unsigned()) {
    return field_error(what, "index",
                       fmt::format("expected a non-negative integer, got {}", it->type_name()));
  }
  return it->get<std::size_t>();
}

Result<std::string> string_of(const json& j, std::string_view what, std::string_view field) {
  auto it = j.find(field);
  if (it == j.end()) {
    return field_error(what, field, "missing");
  }
  if (!it->is_string()) {
    return field_error(what, field, fmt::format("expected a string, got {}", it->type_name()));
  }
  return it->get<std::string>();
}

// A bounty as the model reads it, except that an empty artifact_uri (an input named "")
// is kept rather than refused: a backend echoes what it was given.
Result<model::Bounty> bounty_of(const json& j) {
  auto it = j.find("artifact_uri");
  if (it != j.end() && it->is_string() && it->get_ref<const std::string&>().empty()) {
    json copy = j;
    copy["artifact_uri"] = "-";
    auto b = model::bounty_from_json(copy);
    if (b) {
      b->artifact_uri.clear();
    }
    return b;
  }
  return model::bounty_from_json(j);
}

} // namespace

std::chrono::steady_clock::time_point bounty_deadline(const model::Bounty& b,
                                                      std::chrono::milliseconds timeout) {
  auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  if (b.expiration) {
    // Bounded by the timeout before it is added: an expiration years away must not overflow.
    auto left = *b.expiration - std::chrono::system_clock::now();
    limit = std::min(limit, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::min<std::chrono::system_clock::duration>(left, timeout)));
  }
  return std::chrono::steady_clock::now() + limit;
}

nlohmann::json to_json(const Job& job) {
  json j = json::object();
  j["index"] = job.index;
  j["input"] = job.input;
  j["artifact_type"] = model::to_string(job.artifact_type);
  if (job.bounty) {
    j["bounty"] = json(model::to_json(*job.bounty));
  }
  if (job.error) {
    j["error"] = *job.error;
  }
  if (job.fetched) {
    j["fetched"] = {{"path", job.fetched->path.string()},
                    {"size", job.fetched->size},
                    {"sha256", job.fetched->sha256},
                    {"mimetype", job.fetched->mimetype}};
  }
  if (!job.engines.empty()) {
    j["engines"] = job.engines;
  }
  armor(j);
  return j;
}

Result<Job> job_from_json(const nlohmann::json& in) {
  if (!in.is_object()) {
    return make_error(fmt::format("job: expected a JSON object, got {}", in.type_name()));
  }
  json j = in;
  if (auto r = unarmor(j); !r) {
    return make_error("job: " + r.error().message);
  }
  Job job;
  job.index = PSS_TRY(index_of(j, "job"));
  job.input = PSS_TRY(string_of(j, "job", "input"));
  if (auto it = j.find("artifact_type"); it != j.end()) {
    if (*it == "file") {
      job.artifact_type = model::ArtifactType::file;
    } else if (*it == "url") {
      job.artifact_type = model::ArtifactType::url;
    } else {
      return field_error("job", "artifact_type",
                         fmt::format("expected \"file\" or \"url\", got {}", it->dump()));
    }
  }
  if (auto it = j.find("bounty"); it != j.end() && !it->is_null()) {
    auto b = bounty_of(*it);
    if (!b) {
      return make_error("job: " + b.error().message);
    }
    job.bounty = std::move(*b);
  }
  if (auto it = j.find("error"); it != j.end() && !it->is_null()) {
    job.error = PSS_TRY(string_of(j, "job", "error"));
  }
  if (auto it = j.find("fetched"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return field_error("job", "fetched", "expected an object");
    }
    FetchedArtifact f;
    f.path = PSS_TRY(string_of(*it, "job fetched", "path"));
    f.sha256 = PSS_TRY(string_of(*it, "job fetched", "sha256"));
    f.mimetype = PSS_TRY(string_of(*it, "job fetched", "mimetype"));
    auto size = it->find("size");
    if (size == it->end() || !size->is_number_unsigned()) {
      return field_error("job fetched", "size", "expected a non-negative integer");
    }
    f.size = size->get<std::uint64_t>();
    job.fetched = std::move(f);
  }
  if (auto it = j.find("engines"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || !std::ranges::all_of(*it, [](const json& e) { return e.is_string(); })) {
      return field_error("job", "engines", "expected an array of engine names");
    }
    job.engines = it->get<std::vector<std::string>>();
  }
  return job;
}

nlohmann::json to_json(const WorkerHello& hello) {
  if (hello.error) {
    return {{"error", *hello.error}};
  }
  json list = json::array();
  for (const auto& e : hello.engines) {
    list.push_back({{"name", e.name}, {"product", e.product}, {"vendor", e.vendor}});
  }
  return {{"ready", true}, {"pid", hello.pid}, {"engines", std::move(list)}};
}

Result<WorkerHello> worker_hello_from_json(const nlohmann::json& j) {
  WorkerHello h;
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    h.error = j["error"].get<std::string>();
    return h;
  }
  if (!j.is_object() || !j.value("ready", false)) {
    return make_error("expected {\"ready\": true, ...} or {\"error\": ...}");
  }
  h.pid = j.value("pid", 0);
  if (auto it = j.find("engines"); it != j.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_object()) {
        h.engines.push_back({e.value("name", ""), e.value("product", ""), e.value("vendor", "")});
      }
    }
  }
  return h;
}

nlohmann::json to_json(const std::vector<EngineState>& states) {
  json list = json::array();
  for (const auto& s : states) {
    list.push_back({{"engine", s.engine},
                    {"state", s.state},
                    {"restarts", s.restarts},
                    {"updates_ok", s.updates_ok},
                    {"updates_failed", s.updates_failed},
                    {"cache_hits", s.cache_hits},
                    {"cache_misses", s.cache_misses}});
  }
  return {{"states", std::move(list)}};
}

bool is_states_line(const nlohmann::json& j) {
  return j.is_object() && j.contains("states");
}

Result<std::vector<EngineState>> states_from_json(const nlohmann::json& j) {
  auto it = is_states_line(j) ? j.find("states") : j.end();
  if (it == j.end() || !it->is_array()) {
    return make_error("expected {\"states\": [...]}");
  }
  std::vector<EngineState> out;
  for (const auto& e : *it) {
    if (!e.is_object() || !e.contains("engine") || !e["engine"].is_string()) {
      return make_error("a state without its engine's name");
    }
    EngineState s;
    s.engine = e["engine"].get<std::string>();
    try { // counts of the wrong type are a broken worker
      s.state = e.value("state", s.state);
      s.restarts = e.value("restarts", 0);
      s.updates_ok = e.value("updates_ok", 0);
      s.updates_failed = e.value("updates_failed", 0);
      s.cache_hits = e.value("cache_hits", std::uint64_t{0});
      s.cache_misses = e.value("cache_misses", std::uint64_t{0});
    } catch (const json::exception& x) {
      return make_error("engine " + s.engine + ": " + x.what());
    }
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const JobResult& result) {
  json j = json::object();
  j["index"] = result.index;
  j["input"] = result.input;
  j["bounty"] = json(model::to_json(result.bounty));
  json analyses = json::array();
  for (const auto& ea : result.analyses) {
    analyses.push_back({{"engine", ea.engine}, {"analysis", json(model::to_json(ea.analysis))}});
  }
  j["analyses"] = std::move(analyses);
  armor(j);
  return j;
}

Result<JobResult> job_result_from_json(const nlohmann::json& in) {
  if (!in.is_object()) {
    return make_error(fmt::format("job result: expected a JSON object, got {}", in.type_name()));
  }
  json j = in;
  if (auto r = unarmor(j); !r) {
    return make_error("job result: " + r.error().message);
  }
  JobResult r;
  r.index = PSS_TRY(index_of(j, "job result"));
  r.input = PSS_TRY(string_of(j, "job result", "input"));
  auto bounty = j.find("bounty");
  if (bounty == j.end()) {
    return field_error("job result", "bounty", "missing");
  }
  auto b = bounty_of(*bounty);
  if (!b) {
    return make_error("job result: " + b.error().message);
  }
  r.bounty = std::move(*b);
  auto analyses = j.find("analyses");
  if (analyses == j.end() || !analyses->is_array()) {
    return field_error("job result", "analyses", "expected an array");
  }
  for (const auto& ea : *analyses) {
    if (!ea.is_object()) {
      return field_error("job result", "analyses", "expected objects");
    }
    EngineAnalysis out;
    auto engine = string_of(ea, "job result analyses[]", "engine");
    if (!engine) {
      return engine.error();
    }
    out.engine = std::move(*engine);
    auto a = ea.find("analysis");
    if (a == ea.end()) {
      return field_error("job result analyses[]", "analysis", "missing");
    }
    auto analysis = model::analysis_from_json(*a);
    if (!analysis) {
      return make_error("job result: " + analysis.error().message);
    }
    out.analysis = std::move(*analysis);
    r.analyses.push_back(std::move(out));
  }
  return r;
}

std::string to_json_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace pss::backend

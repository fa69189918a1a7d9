#include "model/analysis.hpp"

#include <cmath>
#include <fmt/format.h>

namespace pss::model {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// Where the scanner runs, as PolySwarm's Python engines report platform.system() and
// platform.machine(); fixed at compile time (this layer does no I/O).
#if defined(__linux__)
constexpr std::string_view k_operating_system = "Linux";
#elif defined(__APPLE__)
constexpr std::string_view k_operating_system = "Darwin";
#elif defined(_WIN32)
constexpr std::string_view k_operating_system = "Windows";
#else
constexpr std::string_view k_operating_system = "unknown";
#endif

#if defined(__x86_64__)
constexpr std::string_view k_architecture = "x86_64";
#elif defined(__aarch64__)
constexpr std::string_view k_architecture = "aarch64";
#elif defined(__i386__)
constexpr std::string_view k_architecture = "i686";
#elif defined(__arm__)
constexpr std::string_view k_architecture = "armv7l";
#elif defined(__riscv) && __riscv_xlen == 64
constexpr std::string_view k_architecture = "riscv64";
#else
constexpr std::string_view k_architecture = "unknown";
#endif

Error field_error(std::string_view field, std::string_view what) {
  return make_error(fmt::format("analysis field '{}': {}", field, what));
}

Error type_error(std::string_view field, std::string_view expected, const json& v) {
  return field_error(field, fmt::format("expected {}, got {}", expected, v.type_name()));
}

const json* member(const json& j, std::string_view key) {
  const auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

Result<std::optional<std::string>> optional_string(const json& j, std::string_view key) {
  const json* v = member(j, key);
  if (v == nullptr) {
    return std::optional<std::string>();
  }
  if (!v->is_string()) {
    return type_error(key, "a string", *v);
  }
  return std::optional<std::string>(v->get<std::string>());
}

} // namespace

Analysis Analysis::unknown_because(std::string reason, std::optional<std::string> comments) {
  Analysis a;
  a.result = Verdict::unknown;
  a.error = std::move(reason);
  a.comments = std::move(comments);
  return a;
}

void finalize(Analysis& a, const Bounty& b) {
  if (b.phase == Phase::arbitration) {
    a.bid.reset();
  } else {
    a.bid = bid_for(a.result, a.confidence, b.rules);
  }
}

nlohmann::ordered_json to_json(const Analysis& a) {
  ordered_json j = ordered_json::object();
  if (a.bid) {
    j["bid"] = *a.bid;
  }
  j["result"] = to_string(a.result);
  if (a.result_name) {
    j["result_name"] = *a.result_name;
  }
  j["product"] = a.product;
  j["vendor"] = a.vendor;
  if (a.analysis_engine_version) {
    j["analysis_engine_version"] = *a.analysis_engine_version;
  }
  if (a.analysis_definition_version) {
    j["analysis_definition_version"] = *a.analysis_definition_version;
  }
  if (a.confidence != 1.0) { // the default, left out as in the seed's output
    j["confidence"] = a.confidence;
  }
  if (a.comments) {
    j["comments"] = *a.comments;
  }
  if (a.error) {
    j["error"] = *a.error;
  }
  if (!a.metadata.empty()) { // null counts as empty
    j["metadata"] = a.metadata;
  }
  return j;
}

Result<Analysis> analysis_from_json(const nlohmann::json& j) {
  if (!j.is_object()) {
    return make_error(fmt::format("analysis: expected a JSON object, got {}", j.type_name()));
  }
  try {
    Analysis a;

    const json* result = member(j, "result");
    if (result == nullptr) {
      return field_error("result", "missing");
    }
    const auto verdict =
        result->is_string() ? parse_verdict(result->get_ref<const std::string&>()) : std::nullopt;
    if (!verdict) {
      return field_error("result", fmt::format("expected one of malicious, benign, suspicious, "
                                               "unknown, got {}",
                                               result->dump()));
    }
    a.result = *verdict;

    if (const json* v = member(j, "bid")) {
      auto bid = wei_from_json(*v);
      if (!bid) {
        return field_error("bid", bid.error().message);
      }
      a.bid = *bid;
    }

    if (const json* v = member(j, "confidence")) {
      if (!v->is_number()) {
        return type_error("confidence", "a number in [0, 1]", *v);
      }
      a.confidence = v->get<double>();
      if (!(a.confidence >= 0.0 && a.confidence <= 1.0)) {
        return field_error("confidence",
                           fmt::format("expected a number in [0, 1], got {}", v->dump()));
      }
    }

    a.result_name = PSS_TRY(optional_string(j, "result_name"));
    a.product = PSS_TRY(optional_string(j, "product")).value_or("");
    a.vendor = PSS_TRY(optional_string(j, "vendor")).value_or("");
    a.analysis_engine_version = PSS_TRY(optional_string(j, "analysis_engine_version"));
    a.analysis_definition_version = PSS_TRY(optional_string(j, "analysis_definition_version"));
    a.comments = PSS_TRY(optional_string(j, "comments"));
    a.error = PSS_TRY(optional_string(j, "error"));

    if (const json* v = member(j, "metadata")) {
      if (!v->is_object()) {
        return type_error("metadata", "an object", *v);
      }
      a.metadata = *v;
    }
    return a;
  } catch (const json::exception& e) { // not expected: every access above is type-checked
    return make_error(fmt::format("analysis: {}", e.what()));
  }
}

nlohmann::ordered_json to_polyswarm(const Analysis& a, Phase phase) {
  ordered_json scanner = ordered_json::object();
  if (a.analysis_engine_version) {
    scanner["version"] = *a.analysis_engine_version;
    scanner["vendor_version"] = *a.analysis_engine_version;
  }
  if (a.analysis_definition_version) {
    scanner["signatures_version"] = *a.analysis_definition_version;
  }
  scanner["environment"] = {{"operating_system", k_operating_system},
                            {"architecture", k_architecture}};

  ordered_json metadata = ordered_json::object();
  metadata["malware_family"] = a.result_name.value_or("");
  metadata["product"] = a.product;
  if (a.comments) {
    metadata["comments"] = ordered_json::array({*a.comments});
  }
  if (a.error) {
    metadata["error"] = *a.error;
  }
  metadata["scanner"] = std::move(scanner);

  ordered_json j = ordered_json::object();
  j["verdict"] = to_string(a.result);
  if (phase == Phase::assertion) {
    j["bid"] = a.bid.value_or(bid_for(a.result, a.confidence, BidRules{}));
    j["confidence"] = a.confidence;
  }
  j["metadata"] = std::move(metadata);
  return j;
}

} // namespace pss::model

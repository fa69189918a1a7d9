// The "icap" section of a manifest: where the ICAP server is, and which of its answers mean
// what (documented in engines/README.md, "driver: icap"). The protocol is code; what each
// product's headers say is data.
#pragma once

#include "model/verdict.hpp"
#include "util/error.hpp"

#include <boost/regex.hpp>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pss::engine::icap {

// A header that names a threat: each match of `name` in its value gives one name (the group
// called `name`, else the first group, else the whole match); without `name`, the whole value
// (trimmed) is the name. `type`'s first group is the threat's type (X-Infection-Found's
// Type=N), matched against the spec's policy_types.
struct ThreatHeader {
  std::string header;
  std::optional<boost::regex> name;
  std::optional<boost::regex> type;
  // Where it is looked for: the ICAP head, the encapsulated HTTP response head, and lines
  // "Header: value" of the body's first bytes (Skyhigh writes its findings into the page).
  bool in_icap = true;
  bool in_http = false;
  bool in_body = false;
  // Only when no header before it named a threat: a generic word some products add beside the
  // real name (ESET's X-Virus-ID: Virus).
  bool fallback = false;
};

// Where the versions are read in the OPTIONS answer (and in each scan's answer): a header,
// and a regex whose groups `engine_version` and `definition_version` give them (without
// groups: the whole match is the engine version).
struct VersionHeader {
  std::string header;
  std::optional<boost::regex> regex;
};

struct Spec {
  std::string url;                                              // a template: ${VAR}, {port}
  std::chrono::milliseconds timeout{std::chrono::seconds(120)}; // one scan, at most
  std::uint64_t max_size = 100ULL << 20;                        // larger artifacts are not sent
  std::string max_connections = "8";                            // a number, or a ${VAR} holding one
  bool preview = true;                                          // use the server's Preview
  std::vector<ThreatHeader> threats;
  bool http_headers = false;      // look for the threat headers in the encapsulated HTTP head too
  std::vector<std::string> clean; // names meaning "nothing found" (any case)
  std::vector<std::string> policy_types;        // types that are a policy failure, not a threat
  std::vector<std::string> suspicious_prefixes; // names starting so are suspicious
  // The verdict when the server replaced the content (HTTP status not 200) without naming a
  // threat in any header: unknown (the default), suspicious or malicious.
  model::Verdict blocked = model::Verdict::unknown;
  std::optional<VersionHeader> version;
  std::vector<std::pair<std::string, std::string>> request_headers; // extra ICAP fields sent
};

// The largest max_connections accepted (after expansion).
inline constexpr int k_max_connections = 1024;

// Parses manifest["icap"]; `where` names the file ("engines/icap/engine.json"), and errors name
// the field ("field 'icap.threats[0].name' is not a valid regex: ...").
Result<Spec> parse_spec(const nlohmann::json& j, const std::string& where);

// max_connections once expanded: 1 to k_max_connections. The error says what is allowed.
Result<int> parse_max_connections(const std::string& text);

} // namespace pss::engine::icap

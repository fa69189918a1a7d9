// A bounty: a scan request for one artifact, as PolySwarm sends it (unknown fields ignored).
#pragma once

#include "model/bid.hpp"
#include "util/error.hpp"
#include "util/iso8601.hpp"

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pss::model {

enum class ArtifactType { file, url };
enum class Phase { assertion, arbitration };

std::string_view to_string(ArtifactType t);
std::string_view to_string(Phase p);

struct Bounty {
  std::uint64_t id = 0;
  ArtifactType artifact_type = ArtifactType::file;
  std::string artifact_uri;
  std::optional<std::string> sha256; // lowercase hex
  std::optional<std::string> mimetype;
  std::optional<std::chrono::system_clock::time_point> expiration;
  Phase phase = Phase::assertion;
  std::optional<std::string> response_url;
  BidRules rules;
  nlohmann::json metadata = nullptr;
};

// Accepts `id` or the older `guid` (integer or numeric string), `artifact_uri` or the older
// `artifact_url`, `artifact_type` in either case, `expiration` in ISO 8601 with `Z`,
// `+hh:mm`, `+hhmm` or no offset (UTC), bids as integers or decimal strings.
// Error names the field and what was wrong with it.
Result<Bounty> bounty_from_json(const nlohmann::json& j);
Result<Bounty> parse_bounty(std::string_view text); // JSON text → bounty
// Canonical names, in a stable order: id, artifact_type, artifact_uri, [sha256, mimetype,
// expiration, response_url], phase, rules, [metadata]. Converts to nlohmann::json as needed.
nlohmann::ordered_json to_json(const Bounty& b);

// An amount of wei from JSON: a non-negative integer, a decimal string ("62500000000000000",
// "6.25e16") or a float (6.25e16), whole and within 64 bits. The Error says what was wrong
// (without naming a field: the caller does).
Result<Wei> wei_from_json(const nlohmann::json& j);

// Bounty times are ISO 8601 (util/iso8601.hpp): read with fractions and offsets, written in
// UTC with "Z" and whole seconds.
using pss::format_iso8601;
using pss::parse_iso8601;

// Deterministic local bounty id from an artifact's sha256 (hex): its first 60 bits.
// The same artifact gets the same id in every backend. (Text that does not start with 15 hex
// digits gets a 60-bit FNV-1a hash of the text instead.)
std::uint64_t local_bounty_id(std::string_view sha256_hex);

} // namespace pss::model

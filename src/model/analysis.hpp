// An engine's answer to one bounty, and its two JSON forms: the CLI's (seed layout) and
// the PolySwarm assertion/vote delivered to a response_url.
#pragma once

#include "model/bid.hpp"
#include "model/bounty.hpp"
#include "model/verdict.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pss::model {

// Comments for skips, as PolySwarm names them.
inline constexpr std::string_view k_skipped = "SKIPPED";
inline constexpr std::string_view k_skipped_encrypted = "SKIPPED:ENCRYPTED";
inline constexpr std::string_view k_skipped_type_unsupported = "SKIPPED:TYPE-UNSUPPORTED";
inline constexpr std::string_view k_skipped_cannot_fetch = "SKIPPED:CANNOT-FETCH";

struct Analysis {
  Verdict result = Verdict::unknown;
  double confidence = 1.0;                // in [0, 1]; drives the bid
  std::optional<Wei> bid;                 // set by finalize(); absent in arbitration
  std::optional<std::string> result_name; // malware name
  std::string product;
  std::string vendor;
  std::optional<std::string> analysis_engine_version;
  std::optional<std::string> analysis_definition_version;
  std::optional<std::string> comments;                // e.g. SKIPPED:TYPE-UNSUPPORTED
  std::optional<std::string> error;                   // reason for `unknown`
  nlohmann::json metadata = nlohmann::json::object(); // extra, engine-specific

  // An `unknown` analysis carrying a reason (and optionally a skip comment).
  static Analysis unknown_because(std::string reason, std::optional<std::string> comments = {});
};

// Sets the bid from verdict, confidence and the bounty's rules (none in arbitration).
void finalize(Analysis& a, const Bounty& b);

// CLI form: {"bid", "result", "result_name", "product", "vendor", "analysis_engine_version",
// "analysis_definition_version", ...}; absent optionals are omitted, `error`/`comments`
// included when set; `confidence` when not 1.0, `metadata` when not empty. Ordered JSON so that
// printing keeps this order; it converts to nlohmann::json as needed.
nlohmann::ordered_json to_json(const Analysis& a);
Result<Analysis> analysis_from_json(const nlohmann::json& j);

// PolySwarm form: assertion {"verdict","bid","confidence","metadata":{...}} or, in the
// arbitration phase, a vote {"verdict","metadata"} (no bid). Without a finalized bid, an
// assertion bids as bid_for() with the default rules.
nlohmann::ordered_json to_polyswarm(const Analysis& a, Phase phase);

} // namespace pss::model

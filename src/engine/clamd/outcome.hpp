// The outcome of one exchange with clamd (its reply, or why there is none) and the verdict it
// comes to. Pure: the client (client.hpp) makes Outcomes, the engine turns them into Analyses.
#pragma once

#include "engine/clamd/protocol.hpp"
#include "model/analysis.hpp"

#include <optional>
#include <string>

namespace pss::engine::clamd {

struct Outcome {
  std::optional<Reply> reply;
  std::string error;            // set when there is no reply
  bool connection_lost = false; // refused/reset/EOF: worth one retry (clamd may restart)
  bool timed_out = false;
};

// The Analysis for an outcome: `benign` for OK, `malicious` with the signature's name for
// FOUND, `unknown` with the reason for everything else (no reply, an ERROR, a limit clamd hit
// with AlertExceedsMax, a reply we do not expect). An `unknown` always carries an error.
model::Analysis to_analysis(const Outcome& out);

} // namespace pss::engine::clamd

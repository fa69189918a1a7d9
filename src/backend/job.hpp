// A unit of work for a backend: one input (path, URI, "-") or one bounty, and its answer.
#pragma once

#include "model/analysis.hpp"
#include "model/bounty.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pss::backend {

struct Job {
  std::size_t index = 0;               // position in the run, for in-order output
  std::string input;                   // what the user named (path, URI, "-", bounty file)
  std::optional<model::Bounty> bounty; // given (-t bounty); otherwise built locally
  model::ArtifactType artifact_type = model::ArtifactType::file;
  std::optional<std::string> error; // known before scanning (bad bounty file, ...)
};

struct EngineAnalysis {
  std::string engine;
  model::Analysis analysis;
};

struct JobResult {
  std::size_t index = 0;
  std::string input;
  model::Bounty bounty;
  std::vector<EngineAnalysis> analyses; // one per engine, always (nothing is dropped)
};

} // namespace pss::backend

// From a finished scanner run (exit status, decoded output) to an Analysis. Pure: tested
// without processes. Never `benign` for a run that crashed, timed out, ran out of CPU time,
// printed more than allowed, exited with an unexpected code, or (with require_match) printed
// nothing we know.
#pragma once

#include "engine/oneshot/spec.hpp"
#include "model/analysis.hpp"
#include "process/child.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pss::engine::oneshot {

struct RunResult {
  std::optional<process::ExitStatus> status; // as reaped (after a kill if timed out)
  bool timed_out = false;
  std::chrono::milliseconds timeout{0};
  std::string output;     // UTF-8 with LF (decoded and normalized)
  bool truncated = false; // more than output_limit bytes (the scanner was killed then)
  std::size_t output_limit = 0;
  std::optional<std::uint64_t> cpu_limit; // seconds (limits.cpu_seconds), if any
};

// What the rules found in the output. The first rule with a verdict that matches decides it;
// named groups are taken from every matching rule, first match wins per group.
struct Findings {
  bool matched = false;
  std::optional<model::Verdict> verdict;
  std::optional<std::string> name;
  std::optional<std::string> engine_version;
  std::optional<std::string> definition_version;
  std::optional<std::string> error;
  std::map<std::string, std::string> metadata; // from rules' "metadata" groups
};

Findings apply_rules(const std::vector<Rule>& rules, std::string_view output);

// `program` names the scanner in reasons ("testvendor.exe exited with 3: ...").
model::Analysis interpret(const Invocation& inv, const RunResult& run, const std::string& program);

} // namespace pss::engine::oneshot

// The "oneshot" part of a manifest: how one bounty becomes one run of a command-line
// scanner, and how its exit code and output become a verdict. Parsing is pure.
#pragma once

#include "model/verdict.hpp"
#include "util/error.hpp"

#include <boost/regex.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pss::engine::oneshot {

// What an exit code means: a verdict, or an error (the scan failed: `unknown`).
struct ExitMeaning {
  std::optional<model::Verdict> verdict; // nullopt: error
};

// A regex applied to each output line (UTF-8, LF). Named groups feed the analysis:
// name (malware name), engine_version, definition_version, error (a reason).
struct Rule {
  std::string pattern;
  boost::regex regex;
  std::optional<model::Verdict> verdict; // set: a match decides the verdict
  std::optional<std::string> name;       // malware name when the pattern has no `name` group
  std::vector<std::string> metadata;     // groups copied to the analysis' metadata
};

struct Timeout {
  std::chrono::milliseconds base{std::chrono::seconds(60)};
  std::chrono::milliseconds per_mib{0};
  std::chrono::milliseconds max{std::chrono::seconds(600)};
  std::chrono::milliseconds grace{std::chrono::seconds(2)}; // SIGTERM → SIGKILL
  std::chrono::milliseconds for_size(std::uint64_t bytes) const;
};

struct Invocation {
  std::vector<std::string>
      argv; // templates: ${VAR} and {path} {nt_path} {sha256} {mimetype} {size}
  std::string encoding = "utf-8"; // utf-8 | cp1252 | utf-16le | detect
  Timeout timeout;
  std::map<int, ExitMeaning> exit_codes;
  std::vector<Rule> rules;
  bool require_match = false;            // no rule matched → unknown (unparseable output)
  std::optional<std::size_t> max_output; // bytes of stdout; default: the manifest's limits.output
};

// "scan": {...} of a manifest. Error names the field.
Result<Invocation> parse_invocation(const nlohmann::json& j, const std::string& where);

} // namespace pss::engine::oneshot

// A unit of work for a backend: one input (path, URI, "-") or one bounty, and its answer;
// and their JSON forms, the messages of the `process` backend's pipes.
#pragma once

#include "model/analysis.hpp"
#include "model/bounty.hpp"
#include "util/error.hpp"
#include "util/temp_file.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pss::backend {

// An artifact already in a local file when the job is made (a data: artifact spooled as its
// bounty arrived, a download the caller made): scanned from there, never fetched again.
struct FetchedArtifact {
  std::filesystem::path path;
  std::uint64_t size = 0;
  std::string sha256;   // empty: not hashed yet (the backend hashes and identifies the file)
  std::string mimetype; // libmagic's, when the caller identified it
  // Keeps the caller's temp file until every copy of the job is gone (not sent on pipes: the
  // sender keeps its copy until the job is answered).
  std::shared_ptr<const TempFile> owner;
};

struct Job {
  std::size_t index = 0;               // position in the run, for in-order output
  std::string input;                   // what the user named (path, URI, "-", bounty file)
  std::optional<model::Bounty> bounty; // given (-t bounty); otherwise built locally
  model::ArtifactType artifact_type = model::ArtifactType::file;
  std::optional<std::string> error; // known before scanning (bad bounty file, ...)
  std::optional<FetchedArtifact> fetched;
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

// JSON forms, lossless for what a job needs:
//   Job       {"index", "input", "artifact_type": "file"|"url", ["bounty": {...}], ["error"],
//              ["fetched": {"path", "size", "sha256", "mimetype"}]}
//   JobResult {"index", "input", "bounty": {...},
//              "analyses": [{"engine": NAME, "analysis": {...}}, ...]}
// Bounty and Analysis use the model's forms (model::to_json, bounty_from_json,
// analysis_from_json). File names need not be UTF-8: a string that is not valid UTF-8 is
// sent as {"__pss_bytes_hex__": "<hex>"} and restored byte for byte by the *_from_json
// functions. Errors name the field and what was wrong with it.
nlohmann::json to_json(const Job& job);
Result<Job> job_from_json(const nlohmann::json& j);
nlohmann::json to_json(const JobResult& result);
Result<JobResult> job_result_from_json(const nlohmann::json& j);

// One line of the pipe protocol: compact JSON (never a raw newline inside), no trailing '\n'.
// Never throws (what to_json left invalid, e.g. a non-UTF-8 object key, is replaced).
std::string to_json_line(const nlohmann::json& j);

} // namespace pss::backend

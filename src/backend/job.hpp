// A unit of work for a backend: one input (path, URI, "-") or one bounty, the engines it asks
// for, and its answer; and their JSON forms: the `process` backend's pipe protocol, whole.
#pragma once

#include "model/analysis.hpp"
#include "model/bounty.hpp"
#include "util/error.hpp"
#include "util/temp_file.hpp"

#include <chrono>
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
  std::vector<std::string> engines; // by name; empty: every engine of the backend
};

// An engine as a backend names it in its answers.
struct EngineInfo {
  std::string name;
  std::string product;
  std::string vendor;
};

// An engine as a backend answers for it, and as /metrics shows it.
struct EngineState {
  std::string engine;
  std::string state = "ok"; // a supervised server's state ("ready", "starting", ...)
  int restarts = 0;
  int updates_ok = 0; // definitions reloads (and updates) that took, and that failed
  int updates_failed = 0;
  // Result cache lookups (backend/cached.hpp): answered from it, and scanned.
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;
  bool operator==(const EngineState&) const = default;
};

struct EngineAnalysis {
  std::string engine;
  model::Analysis analysis;
};

struct JobResult {
  std::size_t index = 0;
  std::string input;
  model::Bounty bounty;
  std::vector<EngineAnalysis> analyses; // one per engine asked, always (nothing is dropped)
};

// Deadline for one bounty: its expiration if sooner than now + timeout.
std::chrono::steady_clock::time_point bounty_deadline(const model::Bounty& b,
                                                      std::chrono::milliseconds timeout);

// JSON forms, lossless for what a job needs:
//   Job       {"index", "input", "artifact_type": "file"|"url", ["bounty": {...}], ["error"],
//              ["fetched": {"path", "size", "sha256", "mimetype"}], ["engines": [NAME, ...]]}
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

// A worker's first line: {"ready": true, "pid": N, "engines": [{"name", "product", "vendor"}]}
// once its engines are started, or {"error": "why"} (then it exits 2).
struct WorkerHello {
  std::optional<std::string> error;
  int pid = 0;
  std::vector<EngineInfo> engines;
};
nlohmann::json to_json(const WorkerHello& hello);
// Error: neither form (a worker that prints something else is broken).
Result<WorkerHello> worker_hello_from_json(const nlohmann::json& j);

// A worker's engines as it sees them, sent after its hello and again whenever they change
// (a restart, a reload, a cache lookup), so that the parent's /metrics shows them:
// {"states": [{"engine", "state", "restarts", "updates_ok", "updates_failed", "cache_hits",
// "cache_misses"}, ...]}. Told from a JobResult by its "states" key.
nlohmann::json to_json(const std::vector<EngineState>& states);
bool is_states_line(const nlohmann::json& j);
Result<std::vector<EngineState>> states_from_json(const nlohmann::json& j);

// One line of the pipe protocol: compact JSON (never a raw newline inside), no trailing '\n'.
// Never throws (what to_json left invalid, e.g. a non-UTF-8 object key, is replaced).
std::string to_json_line(const nlohmann::json& j);

} // namespace pss::backend

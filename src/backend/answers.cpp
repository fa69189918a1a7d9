#include "backend/answers.hpp"

#include "artifact/uri.hpp"
#include "util/sha256.hpp"

#include <algorithm>

namespace pss::backend {

EngineInfo engine_info(const engine::Manifest& m) {
  return {m.name, m.product, m.vendor};
}

std::vector<EngineInfo> engines_for(const Job& job, const std::vector<EngineInfo>& all) {
  if (job.engines.empty()) {
    return all;
  }
  std::vector<EngineInfo> out;
  for (const auto& name : job.engines) {
    auto it = std::ranges::find(all, name, &EngineInfo::name);
    out.push_back(it != all.end() ? *it : EngineInfo{name, "", ""});
  }
  return out;
}

model::Bounty job_bounty(const Job& job) {
  if (job.bounty) {
    return *job.bounty;
  }
  model::Bounty b;
  b.artifact_type = job.artifact_type;
  b.artifact_uri = job.input;
  b.id = model::local_bounty_id(sha256_hex(job.input));
  return b;
}

std::string job_source(const Job& job) {
  if (job.bounty) {
    return job.bounty->artifact_uri;
  }
  if (job.artifact_type == model::ArtifactType::url) {
    return "data:," + job.input; // a URL artifact is the URL itself: its text is scanned
  }
  return job.input;
}

void complete_local_bounty(model::Bounty& b, const Job& job, const artifact::Artifact& art) {
  if (job.bounty) {
    return;
  }
  b.id = model::local_bounty_id(art.sha256);
  if (artifact::classify_input(job.input) == artifact::InputKind::path) {
    b.artifact_uri = artifact::file_uri(art.path);
  }
}

model::Analysis unknown_analysis(const EngineInfo& engine, const model::Bounty& bounty,
                                 const std::string& reason, std::string_view comment) {
  auto a = comment.empty() ? model::Analysis::unknown_because(reason)
                           : model::Analysis::unknown_because(reason, std::string(comment));
  a.product = engine.product;
  a.vendor = engine.vendor;
  model::finalize(a, bounty);
  return a;
}

JobResult unknown_result(const Job& job, const model::Bounty& bounty,
                         const std::vector<EngineInfo>& engines, const std::string& reason,
                         std::string_view comment) {
  JobResult r;
  r.index = job.index;
  r.input = job.input;
  r.bounty = bounty;
  for (const auto& e : engines) {
    r.analyses.push_back({e.name, unknown_analysis(e, bounty, reason, comment)});
  }
  return r;
}

} // namespace pss::backend

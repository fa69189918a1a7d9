// The answers a backend makes up itself: the bounty of an input given without one, and an
// `unknown` answer for every engine a job asked for (a bad input, an expired bounty, a dead
// worker, a bug), filled in as a scan's would be (product, vendor, bid).
#pragma once

#include "artifact/fetch.hpp"
#include "backend/job.hpp"
#include "engine/manifest.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pss::backend {

EngineInfo engine_info(const engine::Manifest& m);

// The engines of `all` that `job` asks for, in its order (all of them when it names none).
// A name not among them is returned too, with only its name: it is answered `unknown`.
std::vector<EngineInfo> engines_for(const Job& job, const std::vector<EngineInfo>& all);

// The bounty for a job: its own, else one made up from its input: its type, its URI, and an
// id from the input's text until the bytes are known (complete_local_bounty).
model::Bounty job_bounty(const Job& job);
// What to fetch for a job: its bounty's URI, or the input; a URL artifact is its own text.
std::string job_source(const Job& job);
// A made-up bounty once the artifact is fetched: the id is the bytes' (the same in every
// backend), a local path becomes a file:// URI.
void complete_local_bounty(model::Bounty& b, const Job& job, const artifact::Artifact& art);

model::Analysis unknown_analysis(const EngineInfo& engine, const model::Bounty& bounty,
                                 const std::string& reason, std::string_view comment = {});
// A result with an `unknown` answer for each of `engines`.
JobResult unknown_result(const Job& job, const model::Bounty& bounty,
                         const std::vector<EngineInfo>& engines, const std::string& reason,
                         std::string_view comment = {});

} // namespace pss::backend

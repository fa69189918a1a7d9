// An ICAP server's answer to a RESPMOD → an Analysis, by the manifest's rules (spec.hpp):
// threat headers and their names, clean values, policy types, suspicious prefixes. Pure.
#pragma once

#include "engine/icap/spec.hpp"
#include "icap/response_reader.hpp"
#include "model/analysis.hpp"

#include <string>

namespace pss::engine::icap {

// `server` names it in reasons ("icap://127.0.0.1:1344/avscan"). A threat named → malicious
// (suspicious when every name has a suspicious prefix), every name in metadata.threats; only
// policy failures → unknown saying so; 204, or a 200 echoing HTTP 200 → benign; a 200 that
// replaced the content without naming a threat → spec.blocked; any other status → unknown.
model::Analysis to_analysis(const ::pss::icap::Response& r, const Spec& spec,
                            const std::string& server);

} // namespace pss::engine::icap

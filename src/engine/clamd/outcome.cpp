#include "engine/clamd/outcome.hpp"

#include "util/posix.hpp"

namespace pss::engine::clamd {

namespace {

constexpr std::string_view k_limits_exceeded = "Heuristics.Limits.Exceeded.";

} // namespace

model::Analysis to_analysis(const Outcome& out) {
  if (!out.reply) {
    return model::Analysis::unknown_because(out.error);
  }
  const Reply& r = *out.reply;
  model::Analysis a;
  switch (r.kind) {
  case Reply::Kind::clean:
    a.result = model::Verdict::benign;
    break;
  case Reply::Kind::found:
    if (r.name.rfind(k_limits_exceeded, 0) == 0) {
      // AlertExceedsMax: clamd stopped at a limit; the artifact was not fully scanned.
      a = model::Analysis::unknown_because("clamd did not scan it all: its " +
                                           r.name.substr(k_limits_exceeded.size()) +
                                           " limit was exceeded");
      a.metadata["signature"] = r.raw_name;
      break;
    }
    a.result = model::Verdict::malicious;
    a.result_name = r.name;
    a.metadata["signature"] = r.raw_name;
    break;
  case Reply::Kind::error:
    a = model::Analysis::unknown_because("clamd: " + r.message);
    break;
  case Reply::Kind::timeout:
  case Reply::Kind::unknown_command:
  case Reply::Kind::other:
    a = model::Analysis::unknown_because("clamd: unexpected reply " + quote(r.message));
    break;
  }
  return a;
}

} // namespace pss::engine::clamd

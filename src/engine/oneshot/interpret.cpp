#include "engine/oneshot/interpret.hpp"

#include "util/size.hpp"

#include <csignal>

namespace pss::engine::oneshot {

namespace {

constexpr std::size_t k_reason_excerpt = 200;

// The last non-empty line, shortened, to show in a reason.
std::string last_line(std::string_view out) {
  while (!out.empty() && out.back() == '\n') {
    out.remove_suffix(1);
  }
  auto nl = out.rfind('\n');
  std::string_view line = nl == std::string_view::npos ? out : out.substr(nl + 1);
  if (line.size() > k_reason_excerpt) {
    return std::string(line.substr(0, k_reason_excerpt)) + "...";
  }
  return std::string(line);
}

std::string with_output(std::string reason, std::string_view out) {
  auto line = last_line(out);
  if (line.empty()) {
    return reason + " (no output)";
  }
  return reason + ": " + line;
}

void take_group(const boost::smatch& m, const char* group, std::optional<std::string>& dest) {
  if (dest) {
    return;
  }
  try {
    const auto& sub = m[group];
    if (sub.matched && sub.length() > 0) {
      dest = sub.str();
    }
  } catch (const std::exception&) { // the pattern has no such group
  }
}

} // namespace

Findings apply_rules(const std::vector<Rule>& rules, std::string_view output) {
  Findings f;
  std::size_t pos = 0;
  while (pos <= output.size()) {
    auto nl = output.find('\n', pos);
    std::string line(
        output.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    for (const auto& rule : rules) {
      boost::smatch m;
      if (!boost::regex_search(line, m, rule.regex)) {
        continue;
      }
      f.matched = true;
      if (rule.verdict && !f.verdict) {
        f.verdict = rule.verdict;
      }
      take_group(m, "name", f.name);
      if (!f.name && rule.name && rule.verdict) {
        f.name = rule.name;
      }
      for (const auto& g : rule.metadata) {
        if (!f.metadata.contains(g)) {
          std::optional<std::string> v;
          take_group(m, g.c_str(), v);
          if (v) {
            f.metadata[g] = *v;
          }
        }
      }
      take_group(m, "engine_version", f.engine_version);
      take_group(m, "definition_version", f.definition_version);
      take_group(m, "error", f.error);
    }
    if (nl == std::string_view::npos) {
      break;
    }
    pos = nl + 1;
  }
  return f;
}

model::Analysis interpret(const Invocation& inv, const RunResult& run, const std::string& program) {
  using model::Analysis;
  if (run.timed_out) {
    auto secs = std::chrono::duration_cast<std::chrono::duration<double>>(run.timeout).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", secs);
    return Analysis::unknown_because("timeout: " + program + " did not finish within " + buf +
                                     " s");
  }
  if (!run.status) {
    return Analysis::unknown_because(program + " did not run");
  }
  if (run.truncated) { // before the signal: we killed it for this
    return Analysis::unknown_because(program + " printed more than " +
                                     format_size(run.output_limit) +
                                     " (its output limit, limits.output): stopped");
  }
  if (run.status->signal != 0) {
    // SIGXCPU at the soft limit; SIGKILL at the hard one, a second later, if it caught that.
    int sig = run.status->signal;
    if (run.cpu_limit &&
        (sig == SIGXCPU ||
         (sig == SIGKILL && run.status->cpu_time >= std::chrono::seconds(*run.cpu_limit)))) {
      return Analysis::unknown_because(program + " " + run.status->describe() + ": CPU limit " +
                                       std::to_string(*run.cpu_limit) + " s (limits.cpu_seconds)");
    }
    return Analysis::unknown_because(
        with_output("crashed: " + program + " " + run.status->describe(), run.output));
  }
  Findings f = apply_rules(inv.rules, run.output);
  int code = run.status->code;
  std::optional<model::Verdict> by_code;
  if (!inv.exit_codes.empty()) {
    auto it = inv.exit_codes.find(code);
    if (it == inv.exit_codes.end()) {
      return Analysis::unknown_because(with_output(
          program + " exited with unexpected status " + std::to_string(code), run.output));
    }
    if (!it->second.verdict) {
      std::string reason = program + " failed (exit status " + std::to_string(code) + ")";
      if (f.error) {
        return Analysis::unknown_because(reason + ": " + *f.error);
      }
      return Analysis::unknown_because(with_output(reason, run.output));
    }
    by_code = it->second.verdict;
  }
  if (inv.require_match && !f.matched) {
    return Analysis::unknown_because(with_output("unparseable output from " + program, run.output));
  }
  auto verdict = f.verdict ? f.verdict : by_code;
  if (!verdict) {
    return Analysis::unknown_because(with_output(
        "no verdict from " + program + " (exit status " + std::to_string(code) + ")", run.output));
  }
  Analysis a;
  a.result = *verdict;
  if (*verdict == model::Verdict::unknown) {
    a.error = f.error ? *f.error : with_output(program + " could not decide", run.output);
  }
  if (*verdict == model::Verdict::malicious || *verdict == model::Verdict::suspicious) {
    a.result_name = f.name;
  }
  a.analysis_engine_version = f.engine_version;
  a.analysis_definition_version = f.definition_version;
  for (const auto& [k, v] : f.metadata) {
    a.metadata[k] = v;
  }
  return a;
}

} // namespace pss::engine::oneshot

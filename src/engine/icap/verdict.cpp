#include "engine/icap/verdict.hpp"

#include <algorithm>

namespace pss::engine::icap {

namespace wire = ::pss::icap;

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

std::optional<std::string> group(const boost::smatch& m, const char* name) {
  try {
    const auto& sub = m[name];
    if (sub.matched) {
      return sub.str();
    }
  } catch (const std::exception&) { // the pattern has no such group
  }
  return std::nullopt;
}

// The names one header value gives: each match of the pattern, or the whole value.
std::vector<std::string> names_in(const std::string& value, const ThreatHeader& h) {
  std::vector<std::string> out;
  if (!h.name) {
    out.push_back(trim(value));
    return out;
  }
  for (boost::sregex_iterator it(value.begin(), value.end(), *h.name), end; it != end; ++it) {
    const boost::smatch& m = *it;
    std::string name;
    if (auto named = group(m, "name")) {
      name = *named;
    } else if (m.size() > 1) {
      name = m[1].matched ? m[1].str() : "";
    } else {
      name = m[0].str();
    }
    out.push_back(trim(name));
  }
  return out;
}

struct Findings {
  std::vector<std::string> threats;  // in order found, each once
  std::vector<std::string> policies; // "type 2: NAME"
};

void add_once(std::vector<std::string>& list, std::string s) {
  if (std::find(list.begin(), list.end(), s) == list.end()) {
    list.push_back(std::move(s));
  }
}

// "Name: value" lines of the body's first bytes (Skyhigh's block page lists its findings so).
std::vector<std::string> body_lines(const std::string& body, const std::string& header) {
  std::vector<std::string> out;
  std::string_view rest = body;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
    if (line.size() > header.size() && line[header.size()] == ':' &&
        wire::iequals(line.substr(0, header.size()), header)) {
      out.push_back(trim(line.substr(header.size() + 1)));
    }
  }
  return out;
}

Findings find(const wire::Response& r, const Spec& spec) {
  Findings f;
  for (const auto& h : spec.threats) {
    if (h.fallback && !f.threats.empty()) {
      continue;
    }
    std::vector<std::string> values;
    if (h.in_icap) {
      values = r.fields.find_all(h.header);
    }
    if (h.in_http && r.res_head) {
      for (auto& v : r.res_head->fields.find_all(h.header)) {
        values.push_back(std::move(v));
      }
    }
    if (h.in_body) {
      for (auto& v : body_lines(r.body_prefix, h.header)) {
        values.push_back(std::move(v));
      }
    }
    for (const auto& value : values) {
      std::optional<std::string> type;
      if (boost::smatch m; h.type && boost::regex_search(value, m, *h.type)) {
        type = trim(m[1].str());
      }
      const bool policy = type && std::find(spec.policy_types.begin(), spec.policy_types.end(),
                                            *type) != spec.policy_types.end();
      for (auto& name : names_in(value, h)) {
        const bool clean =
            name.empty() || std::any_of(spec.clean.begin(), spec.clean.end(),
                                        [&](const auto& c) { return wire::iequals(name, c); });
        if (clean) {
          continue;
        }
        if (policy) {
          add_once(f.policies, "type " + *type + ": " + name);
        } else {
          add_once(f.threats, std::move(name));
        }
      }
    }
  }
  return f;
}

bool is_suspicious(const std::string& name, const Spec& spec) {
  return std::any_of(spec.suspicious_prefixes.begin(), spec.suspicious_prefixes.end(),
                     [&](const std::string& p) { return name.rfind(p, 0) == 0; });
}

std::string joined(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& s : list) {
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

} // namespace

model::Analysis to_analysis(const wire::Response& r, const Spec& spec, const std::string& server) {
  const int status = r.status.status;
  if (status != 200 && status != 204) {
    return model::Analysis::unknown_because("ICAP server " + server + " answered " +
                                            std::to_string(status) + " " + r.status.reason);
  }
  Findings f = find(r, spec);
  model::Analysis a;
  if (!f.threats.empty()) {
    // A heuristic name beside a definite one does not soften the verdict.
    auto definite = std::find_if(f.threats.begin(), f.threats.end(),
                                 [&](const auto& n) { return !is_suspicious(n, spec); });
    a.result = definite == f.threats.end() ? model::Verdict::suspicious : model::Verdict::malicious;
    a.result_name = definite == f.threats.end() ? f.threats.front() : *definite;
    a.metadata["threats"] = f.threats;
    if (!f.policies.empty()) {
      a.metadata["policy"] = f.policies;
    }
    return a;
  }
  if (!f.policies.empty()) {
    a = model::Analysis::unknown_because(
        "ICAP server " + server +
        " could not scan it (a policy failure, not a threat: " + joined(f.policies) + ")");
    a.metadata["policy"] = f.policies;
    return a;
  }
  if (status == 204) {
    a.result = model::Verdict::benign;
    return a;
  }
  if (!r.res_head) {
    return model::Analysis::unknown_because("ICAP server " + server +
                                            " answered 200 without an HTTP response");
  }
  if (r.res_head->status == 200) {
    a.result = model::Verdict::benign; // the content came back as it was sent
    return a;
  }
  const std::string blocked =
      "HTTP " + std::to_string(r.res_head->status) + " " + r.res_head->reason;
  if (spec.blocked == model::Verdict::unknown) {
    return model::Analysis::unknown_because("ICAP server " + server +
                                            " replaced the content with " + blocked +
                                            " without naming a threat");
  }
  a.result = spec.blocked;
  a.metadata["blocked"] = blocked;
  return a;
}

} // namespace pss::engine::icap

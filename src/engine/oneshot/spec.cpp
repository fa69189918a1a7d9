#include "engine/oneshot/spec.hpp"

#include "util/text.hpp"

#include <charconv>

namespace pss::engine::oneshot {

using nlohmann::json;

std::chrono::milliseconds Timeout::for_size(std::uint64_t bytes) const {
  auto mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  auto total = base + std::chrono::milliseconds(
                          static_cast<long long>(static_cast<double>(per_mib.count()) * mib));
  return std::min(total, max);
}

namespace {

Error bad(const std::string& where, const std::string& field, const std::string& what) {
  return make_error(where + ": field '" + field + "' " + what);
}

Result<std::chrono::milliseconds> seconds(const json& v, const std::string& where,
                                          const std::string& field) {
  if (!v.is_number() || v.get<double>() < 0) {
    return bad(where, field, "must be a non-negative number of seconds");
  }
  return std::chrono::milliseconds(static_cast<long long>(v.get<double>() * 1000));
}

Result<std::optional<model::Verdict>> meaning(const json& v, const std::string& where,
                                              const std::string& field) {
  if (!v.is_string()) {
    return bad(where, field, "must be a verdict or \"error\"");
  }
  auto s = v.get<std::string>();
  if (s == "error") {
    return std::optional<model::Verdict>();
  }
  auto verdict = model::parse_verdict(s);
  if (!verdict) {
    return bad(where, field,
               "must be malicious, benign, suspicious, unknown or error, not \"" + s + "\"");
  }
  return std::optional<model::Verdict>(*verdict);
}

} // namespace

Result<Invocation> parse_invocation(const json& j, const std::string& where) {
  if (!j.is_object()) {
    return make_error(where + ": must be an object");
  }
  Invocation inv;
  auto argv = j.find("argv");
  if (argv == j.end() || !argv->is_array() || argv->empty()) {
    return bad(where, "argv", "must be a non-empty array of strings");
  }
  for (const auto& a : *argv) {
    if (!a.is_string()) {
      return bad(where, "argv", "must be a non-empty array of strings");
    }
    inv.argv.push_back(a.get<std::string>());
  }
  if (auto e = j.find("encoding"); e != j.end()) {
    if (!e->is_string() || !text::parse_encoding(e->get<std::string>())) {
      return bad(where, "encoding", "must be utf-8, cp1252, utf-16le or detect");
    }
    inv.encoding = e->get<std::string>();
  }
  if (auto t = j.find("timeout"); t != j.end()) {
    if (t->is_number()) {
      inv.timeout.base = PSS_TRY(seconds(*t, where, "timeout"));
      inv.timeout.max = std::max(inv.timeout.max, inv.timeout.base);
    } else if (t->is_object()) {
      for (auto [key, dest] :
           {std::pair{"base", &inv.timeout.base}, std::pair{"per_mib", &inv.timeout.per_mib},
            std::pair{"max", &inv.timeout.max}, std::pair{"grace", &inv.timeout.grace}}) {
        if (auto v = t->find(key); v != t->end()) {
          *dest = PSS_TRY(seconds(*v, where, std::string("timeout.") + key));
        }
      }
    } else {
      return bad(where, "timeout", "must be seconds or {base, per_mib, max, grace}");
    }
  }
  if (auto codes = j.find("exit_codes"); codes != j.end()) {
    if (!codes->is_object()) {
      return bad(where, "exit_codes", "must map exit codes to verdicts");
    }
    for (const auto& [key, value] : codes->items()) {
      int code = 0;
      auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), code);
      if (ec != std::errc() || p != key.data() + key.size() || code < 0 || code > 255) {
        return bad(where, "exit_codes." + key, "is not an exit code (0-255)");
      }
      inv.exit_codes[code] = ExitMeaning{PSS_TRY(meaning(value, where, "exit_codes." + key))};
    }
  }
  if (auto rules = j.find("rules"); rules != j.end()) {
    if (!rules->is_array()) {
      return bad(where, "rules", "must be an array of {pattern, verdict}");
    }
    for (std::size_t i = 0; i < rules->size(); ++i) {
      const json& r = (*rules)[i];
      std::string field = "rules[" + std::to_string(i) + "]";
      if (!r.is_object() || !r.contains("pattern") || !r["pattern"].is_string()) {
        return bad(where, field, "must be {\"pattern\": regex[, \"verdict\": v]}");
      }
      Rule rule;
      rule.pattern = r["pattern"].get<std::string>();
      try {
        rule.regex = boost::regex(rule.pattern, boost::regex::perl);
      } catch (const boost::regex_error& e) {
        return bad(where, field + ".pattern", std::string("is not a valid regex: ") + e.what());
      }
      if (auto v = r.find("verdict"); v != r.end()) {
        auto m = PSS_TRY(meaning(*v, where, field + ".verdict"));
        if (!m) {
          return bad(where, field + ".verdict", "must be a verdict");
        }
        rule.verdict = m;
      }
      if (auto n = r.find("name"); n != r.end()) {
        if (!n->is_string() || n->get<std::string>().empty()) {
          return bad(where, field + ".name", "must be a non-empty string");
        }
        rule.name = n->get<std::string>();
      }
      if (auto md = r.find("metadata"); md != r.end()) {
        if (!md->is_array()) {
          return bad(where, field + ".metadata", "must be an array of group names");
        }
        for (const auto& g : *md) {
          if (!g.is_string() || rule.regex.mark_count() == 0) { // no groups at all: nothing to copy
            return bad(where, field + ".metadata", "must name groups of the pattern");
          }
          rule.metadata.push_back(g.get<std::string>());
        }
      }
      inv.rules.push_back(std::move(rule));
    }
  }
  if (auto rm = j.find("require_match"); rm != j.end()) {
    if (!rm->is_boolean()) {
      return bad(where, "require_match", "must be true or false");
    }
    inv.require_match = rm->get<bool>();
  }
  if (auto mo = j.find("max_output"); mo != j.end()) {
    if (!mo->is_number_unsigned() || mo->get<std::uint64_t>() == 0) {
      return bad(where, "max_output", "must be a positive number of bytes");
    }
    inv.max_output = mo->get<std::size_t>();
  }
  return inv;
}

} // namespace pss::engine::oneshot

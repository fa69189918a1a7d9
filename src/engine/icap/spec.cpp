#include "engine/icap/spec.hpp"

#include "engine/field_reader.hpp"
#include "util/posix.hpp"
#include "util/size.hpp"

#include <charconv>

namespace pss::engine::icap {

using nlohmann::json;

namespace {

// A regex field (Perl syntax); empty or missing: none.
Result<std::optional<boost::regex>> regex(const FieldReader& r, const json& j,
                                          const std::string& field) {
  auto text = PSS_TRY(r.string(j, field, false));
  if (text.empty()) {
    return std::optional<boost::regex>{};
  }
  try {
    return std::optional<boost::regex>(boost::regex(text, boost::regex::perl));
  } catch (const boost::regex_error& e) {
    return r.bad(field, std::string("is not a valid regex: ") + e.what());
  }
}

// A header name: RFC 7230 token characters.
bool is_header_name(const std::string& s) {
  return !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789!#$%&'*+-.^_`|~") == std::string::npos;
}

} // namespace

Result<int> parse_max_connections(const std::string& text) {
  int n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p != text.data() + text.size() || n < 1 || n > k_max_connections) {
    return make_error("must be a number from 1 to " + std::to_string(k_max_connections) + ", not " +
                      quote(text));
  }
  return n;
}

Result<Spec> parse_spec(const json& j, const std::string& where) {
  FieldReader r{where, "icap."};
  if (!j.is_object()) {
    return make_error(where +
                      ": field 'icap' must be an object {\"url\": ..., \"threats\": [...]}");
  }
  static const char* const k_known[] = {
      "url",     "timeout", "max_size",       "max_connections", "preview",
      "threats", "clean",   "http_headers",   "policy_types",    "suspicious_prefixes",
      "blocked", "version", "request_headers"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(std::begin(k_known), std::end(k_known), key) == std::end(k_known)) {
      return r.bad(key, "is not a field of the icap section (url, timeout, max_size, "
                        "max_connections, preview, threats, http_headers, clean, policy_types, "
                        "suspicious_prefixes, blocked, version, request_headers)");
    }
  }
  Spec s;
  s.url = PSS_TRY(r.string(j, "url", true));
  if (s.url.empty()) {
    return r.bad("url", "is empty");
  }
  if (auto it = j.find("timeout"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() <= 0 || it->get<double>() > 1e6) {
      return r.bad("timeout", "must be a positive number of seconds (at most 1e6)");
    }
    s.timeout = std::chrono::milliseconds(static_cast<long long>(it->get<double>() * 1000));
  }
  if (auto it = j.find("max_size"); it != j.end() && !it->is_null()) {
    if (it->is_number_unsigned()) {
      s.max_size = it->get<std::uint64_t>();
    } else if (it->is_string()) {
      auto n = parse_size(it->get<std::string>());
      if (!n) {
        return r.bad("max_size",
                     "must be bytes or a size such as \"100M\" (" + n.error().message + ")");
      }
      s.max_size = *n;
    } else {
      return r.bad("max_size", "must be bytes or a size such as \"100M\"");
    }
  }
  if (auto it = j.find("max_connections"); it != j.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      s.max_connections = std::to_string(it->get<long long>());
    } else if (it->is_string()) {
      s.max_connections = it->get<std::string>();
    } else {
      return r.bad("max_connections", "must be a number, or a ${VAR} holding one");
    }
    // A ${VAR} is checked by the driver once expanded.
    if (s.max_connections.find("${") == std::string::npos) {
      if (auto n = parse_max_connections(s.max_connections); !n) {
        return r.bad("max_connections", n.error().message);
      }
    }
  }
  s.preview = PSS_TRY(r.boolean(j, "preview", s.preview));
  s.http_headers = PSS_TRY(r.boolean(j, "http_headers", s.http_headers));

  auto threats = j.find("threats");
  if (threats == j.end() || !threats->is_array() || threats->empty()) {
    return r.bad("threats", "must list the headers that name a threat, e.g. "
                            "[{\"header\": \"X-Virus-ID\"}]");
  }
  for (std::size_t i = 0; i < threats->size(); ++i) {
    const json& t = (*threats)[i];
    FieldReader tr{where, "icap.threats[" + std::to_string(i) + "]."};
    if (!t.is_object()) {
      return r.bad("threats[" + std::to_string(i) + "]",
                   "must be an object {\"header\": ..., \"name\": regex, \"type\": regex}");
    }
    for (const auto& [key, value] : t.items()) {
      if (key != "header" && key != "name" && key != "type" && key != "in" && key != "fallback") {
        return tr.bad(key, "is not a field of a threat header (header, name, type, in, fallback)");
      }
    }
    ThreatHeader h;
    h.header = PSS_TRY(tr.string(t, "header", true));
    if (!is_header_name(h.header)) {
      return tr.bad("header", "must be a header name, not " + quote(h.header));
    }
    h.name = PSS_TRY(regex(tr, t, "name"));
    h.type = PSS_TRY(regex(tr, t, "type"));
    h.in_http = s.http_headers;
    if (t.contains("in")) {
      auto in = PSS_TRY(tr.strings(t, "in"));
      if (in.empty()) {
        return tr.bad("in", "must name where to look: \"icap\", \"http\" or \"body\"");
      }
      h.in_icap = h.in_http = false;
      for (const auto& where_ : in) {
        if (where_ == "icap") {
          h.in_icap = true;
        } else if (where_ == "http") {
          h.in_http = true;
        } else if (where_ == "body") {
          h.in_body = true;
        } else {
          return tr.bad("in", "must hold \"icap\", \"http\" or \"body\", not " + quote(where_));
        }
      }
    }
    h.fallback = PSS_TRY(tr.boolean(t, "fallback", false));
    if (h.type && h.type->mark_count() == 0) {
      return tr.bad("type", "needs a group: the type is what it captures, e.g. \"Type=(\\\\d+)\"");
    }
    s.threats.push_back(std::move(h));
  }
  s.clean = PSS_TRY(r.strings(j, "clean"));
  s.policy_types = PSS_TRY(r.strings(j, "policy_types"));
  s.suspicious_prefixes = PSS_TRY(r.strings(j, "suspicious_prefixes"));
  for (const auto& p : s.suspicious_prefixes) {
    if (p.empty()) {
      return r.bad("suspicious_prefixes", "must not hold an empty prefix (every name would match)");
    }
  }
  std::string blocked = PSS_TRY(r.string(j, "blocked", false, "unknown"));
  auto v = model::parse_verdict(blocked);
  if (!v || *v == model::Verdict::benign) {
    return r.bad("blocked", "must be unknown, suspicious or malicious, not " + quote(blocked));
  }
  s.blocked = *v;
  if (auto it = j.find("version"); it != j.end() && !it->is_null()) {
    FieldReader vr{where, "icap.version."};
    if (!it->is_object()) {
      return r.bad("version", "must be an object {\"header\": ..., \"regex\": ...}");
    }
    VersionHeader vh;
    vh.header = PSS_TRY(vr.string(*it, "header", true));
    if (!is_header_name(vh.header)) {
      return vr.bad("header", "must be a header name, not " + quote(vh.header));
    }
    vh.regex = PSS_TRY(regex(vr, *it, "regex"));
    s.version = std::move(vh);
  }
  if (auto it = j.find("request_headers"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return r.bad("request_headers", "must be an object of header names to strings");
    }
    for (const auto& [name, value] : it->items()) {
      if (!is_header_name(name)) {
        return r.bad("request_headers", "names " + quote(name) + ", which is not a header name");
      }
      if (!value.is_string() ||
          value.get<std::string>().find_first_of("\r\n") != std::string::npos) {
        return r.bad("request_headers." + name, "must be a string on one line");
      }
      s.request_headers.emplace_back(name, value.get<std::string>());
    }
  }
  return s;
}

} // namespace pss::engine::icap

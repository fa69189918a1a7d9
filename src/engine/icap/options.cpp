#include "engine/icap/options.hpp"

#include "util/posix.hpp"

#include <charconv>

namespace pss::engine::icap {

namespace wire = ::pss::icap;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// The comma-separated tokens of a field's value: "RESPMOD, REQMOD".
bool lists(const std::string* value, std::string_view token) {
  if (value == nullptr) {
    return false;
  }
  std::string_view rest = *value;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    if (wire::iequals(trim(rest.substr(0, comma)), token)) {
      return true;
    }
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
  }
  return false;
}

template <typename T>
Result<std::optional<T>> number(const wire::Fields& f, std::string_view name, T max) {
  const std::string* v = f.find(name);
  if (v == nullptr) {
    return std::optional<T>{};
  }
  T n = 0;
  std::string_view text = trim(*v);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p != text.data() + text.size() || n > max) {
    return make_error(std::string(name) + " is not a number: " + quote(*v));
  }
  return std::optional<T>(n);
}

} // namespace

std::string istag_of(const wire::Fields& fields) {
  const std::string* v = fields.find("ISTag");
  if (v == nullptr) {
    return {};
  }
  std::string_view t = trim(*v);
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') {
    t = t.substr(1, t.size() - 2);
  }
  return std::string(t);
}

Result<Options> parse_options(const wire::Response& r, const std::string& server) {
  auto fail = [&](const std::string& what) {
    return make_error("ICAP server " + server + " " + what);
  };
  if (r.status.status != 200) {
    return fail("answered OPTIONS with " + std::to_string(r.status.status) + " " + r.status.reason);
  }
  if (!lists(r.fields.find("Methods"), "RESPMOD")) {
    const std::string* m = r.fields.find("Methods");
    return fail("does not offer RESPMOD (its OPTIONS answer says Methods: " +
                (m ? *m : std::string("nothing")) + ")");
  }
  Options o;
  o.istag = istag_of(r.fields);
  auto preview = number<std::uint64_t>(r.fields, "Preview", 1ULL << 40);
  auto max = number<std::uint64_t>(r.fields, "Max-Connections", 1 << 20);
  auto ttl = number<long long>(r.fields, "Options-TTL", 1LL << 40);
  for (const auto* bad : {preview ? nullptr : &preview, max ? nullptr : &max}) {
    if (bad != nullptr) {
      return fail("sent a bad OPTIONS answer: " + bad->error().message);
    }
  }
  if (!ttl) {
    return fail("sent a bad OPTIONS answer: " + ttl.error().message);
  }
  o.preview = *preview;
  if (*max) {
    o.max_connections = static_cast<int>(**max);
  }
  if (o.max_connections && *o.max_connections < 1) {
    return fail("sent a bad OPTIONS answer: Max-Connections is 0");
  }
  o.ttl = std::chrono::seconds(ttl->value_or(0));
  o.allow_204 = lists(r.fields.find("Allow"), "204");
  o.fields = r.fields;
  return o;
}

EngineVersions versions_of(const wire::Fields& fields, const Spec& spec) {
  EngineVersions v;
  if (spec.version) {
    if (const std::string* value = fields.find(spec.version->header)) {
      if (!spec.version->regex) {
        v.engine = std::string(trim(*value));
      } else if (boost::smatch m; boost::regex_search(*value, m, *spec.version->regex)) {
        auto group = [&m](const char* name) -> std::optional<std::string> {
          try {
            const auto& sub = m[name];
            if (sub.matched) {
              return sub.str();
            }
          } catch (const std::exception&) { // the pattern has no such group
          }
          return std::nullopt;
        };
        v.engine = group("engine_version");
        v.definitions = group("definition_version");
        if (!v.engine && !v.definitions) {
          v.engine = m.size() > 1 && m[1].matched ? m[1].str() : m[0].str();
        }
      }
    }
  }
  if (!v.definitions) {
    std::string tag = istag_of(fields);
    if (!tag.empty()) {
      v.definitions = tag;
      v.note = "definitions: the service's ISTag";
    }
  }
  return v;
}

} // namespace pss::engine::icap

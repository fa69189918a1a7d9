#include "http/metrics.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace pss::http {

namespace {

bool is_name_start(char c, bool colon_ok) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

bool is_name_char(char c, bool colon_ok) {
  return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

// Metric names may contain ':' (reserved for recording rules); label names may not.
bool valid_name(std::string_view s, bool colon_ok) {
  if (s.empty() || !is_name_start(s[0], colon_ok)) {
    return false;
  }
  for (char c : s) {
    if (!is_name_char(c, colon_ok)) {
      return false;
    }
  }
  return true;
}

void check_names(const std::string& name, const std::vector<std::string>& label_names) {
  if (!valid_name(name, true)) {
    throw std::invalid_argument("invalid metric name '" + name + "'");
  }
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!valid_name(l, false) || l.rfind("__", 0) == 0) {
      throw std::invalid_argument("metric " + name + ": invalid label name '" + l + "'");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (label_names[j] == l) {
        throw std::invalid_argument("metric " + name + ": duplicate label name '" + l + "'");
      }
    }
  }
}

} // namespace

// Up to here every integer is exactly a double (2^53 ~ 9e15); beyond, 1e+16 is clearer.
constexpr double k_exact_integers = 1e15;

std::string format_value(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  std::array<char, 64> buf{};
  std::to_chars_result r{};
  if (std::abs(v) < k_exact_integers && v == std::trunc(v)) {
    // Counts as integers: 100000, not the shorter "1e+05".
    r = std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<std::int64_t>(v));
  } else {
    // The shortest form that reads back the same: 0.012, 1e+21.
    r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  }
  auto [end, ec] = r;
  if (ec != std::errc()) {
    return "NaN"; // cannot happen with 64 bytes
  }
  return std::string(buf.data(), end);
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  for (char c : v) {
    switch (c) {
    case '\\':
      out += "\\\\";
      break;
    case '"':
      out += "\\\"";
      break;
    case '\n':
      out += "\\n";
      break;
    default:
      out.push_back(c);
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ---- Family ----

Family::Family(std::string name, std::string help, std::vector<std::string> label_names)
    : m_name(std::move(name)), m_help(std::move(help)), m_label_names(std::move(label_names)) {
  check_names(m_name, m_label_names);
}

void Family::check_arity(const LabelValues& values) const {
  if (values.size() != m_label_names.size()) {
    throw std::invalid_argument("metric " + m_name + ": " + std::to_string(values.size()) +
                                " label values for " + std::to_string(m_label_names.size()) +
                                " label names");
  }
}

std::string Family::label_text(const LabelValues& values, std::string_view extra) const {
  if (values.empty() && extra.empty()) {
    return {};
  }
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += m_label_names[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  if (!extra.empty()) {
    if (!values.empty()) {
      out += ',';
    }
    out += extra;
  }
  out += '}';
  return out;
}

void Family::render(std::string& out) const {
  out += "# HELP " + m_name + ' ' + escape_help(m_help) + '\n';
  out += "# TYPE " + m_name + ' ' + std::string(type()) + '\n';
  std::lock_guard lock(m_mutex);
  render_series(out);
}

namespace {

// Renders `name{labels} value` lines of a counter or gauge; a family without labels shows 0
// before its first update.
void render_values(const Family& f, const std::map<LabelValues, double>& values, std::string& out) {
  if (values.empty() && f.label_names().empty()) {
    out += f.name() + " 0\n";
    return;
  }
  for (const auto& [key, v] : values) {
    out += f.name() + f.label_text(key) + ' ' + format_value(v) + '\n';
  }
}

} // namespace

// ---- Counter ----

void Counter::inc(const LabelValues& values, double by) {
  check_arity(values);
  if (!(by >= 0)) {
    throw std::invalid_argument("metric " + name() + ": a counter cannot decrease");
  }
  std::lock_guard lock(m_mutex);
  m_values[values] += by;
}

double Counter::value(const LabelValues& values) const {
  check_arity(values);
  std::lock_guard lock(m_mutex);
  auto it = m_values.find(values);
  return it == m_values.end() ? 0 : it->second;
}

void Counter::render_series(std::string& out) const {
  render_values(*this, m_values, out);
}

// ---- Gauge ----

void Gauge::set(const LabelValues& values, double v) {
  check_arity(values);
  std::lock_guard lock(m_mutex);
  m_values[values] = v;
}

void Gauge::inc(const LabelValues& values, double by) {
  check_arity(values);
  std::lock_guard lock(m_mutex);
  m_values[values] += by;
}

double Gauge::value(const LabelValues& values) const {
  check_arity(values);
  std::lock_guard lock(m_mutex);
  auto it = m_values.find(values);
  return it == m_values.end() ? 0 : it->second;
}

void Gauge::render_series(std::string& out) const {
  render_values(*this, m_values, out);
}

// ---- Histogram ----

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> buckets)
    : Family(std::move(name), std::move(help), std::move(label_names)),
      m_buckets(std::move(buckets)) {
  for (const std::string& l : Family::label_names()) {
    if (l == "le") {
      throw std::invalid_argument("histogram " + this->name() + ": 'le' is a reserved label");
    }
  }
  for (std::size_t i = 0; i < m_buckets.size(); ++i) {
    if (!std::isfinite(m_buckets[i]) || (i > 0 && !(m_buckets[i - 1] < m_buckets[i]))) {
      throw std::invalid_argument("histogram " + this->name() +
                                  ": buckets must be finite and strictly increasing");
    }
  }
}

void Histogram::observe(const LabelValues& values, double v) {
  check_arity(values);
  std::size_t i = 0;
  while (i < m_buckets.size() && !(v <= m_buckets[i])) {
    ++i; // NaN lands in +Inf, as in the Go client
  }
  std::lock_guard lock(m_mutex);
  Snapshot& s = m_series[values];
  if (s.counts.empty()) {
    s.counts.resize(m_buckets.size() + 1);
  }
  ++s.counts[i];
  s.sum += v;
  ++s.count;
}

Histogram::Snapshot Histogram::snapshot(const LabelValues& values) const {
  check_arity(values);
  std::lock_guard lock(m_mutex);
  auto it = m_series.find(values);
  if (it == m_series.end()) {
    Snapshot s;
    s.counts.resize(m_buckets.size() + 1);
    return s;
  }
  return it->second;
}

void Histogram::render_series(std::string& out) const {
  auto render_one = [&](const LabelValues& values, const Snapshot& s) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= m_buckets.size(); ++i) {
      cumulative += s.counts.empty() ? 0 : s.counts[i];
      std::string le = i < m_buckets.size() ? format_value(m_buckets[i]) : "+Inf";
      out += name() + "_bucket" + label_text(values, "le=\"" + le + "\"") + ' ' +
             std::to_string(cumulative) + '\n';
    }
    out += name() + "_sum" + label_text(values) + ' ' + format_value(s.sum) + '\n';
    out += name() + "_count" + label_text(values) + ' ' + std::to_string(s.count) + '\n';
  };
  if (m_series.empty() && label_names().empty()) {
    render_one({}, Snapshot{});
    return;
  }
  for (const auto& [values, s] : m_series) {
    render_one(values, s);
  }
}

// ---- Metrics ----

template <typename T, typename... Args>
T& Metrics::get(const std::string& name, const std::string& help,
                const std::vector<std::string>& label_names, Args&&... args) {
  std::lock_guard lock(m_mutex);
  auto it = m_families.find(name);
  if (it == m_families.end()) {
    auto family = std::make_unique<T>(name, help, label_names, std::forward<Args>(args)...);
    T& ref = *family;
    m_families.emplace(name, std::move(family));
    return ref;
  }
  auto* existing = dynamic_cast<T*>(it->second.get());
  if (existing == nullptr || existing->label_names() != label_names) {
    throw std::invalid_argument("metric " + name + " is already registered as a " +
                                std::string(it->second->type()) + " with other labels or type");
  }
  return *existing;
}

Counter& Metrics::counter(const std::string& name, const std::string& help,
                          const std::vector<std::string>& label_names) {
  return get<Counter>(name, help, label_names);
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help,
                      const std::vector<std::string>& label_names) {
  return get<Gauge>(name, help, label_names);
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                              const std::vector<std::string>& label_names,
                              const std::vector<double>& buckets) {
  Histogram& h = get<Histogram>(name, help, label_names, buckets);
  if (h.buckets() != buckets) {
    throw std::invalid_argument("histogram " + name + " is already registered with other buckets");
  }
  return h;
}

std::string Metrics::render() const {
  std::string out;
  std::lock_guard lock(m_mutex);
  for (const auto& [name, family] : m_families) {
    family->render(out);
  }
  return out;
}

} // namespace pss::http

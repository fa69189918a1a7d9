// A small thread-safe Prometheus registry: counters, gauges and histograms with labels,
// rendered in the text exposition format 0.0.4 for GET /metrics.
// https://prometheus.io/docs/instrumenting/exposition_formats/
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pss::http {

// Label values, in the order of the family's label names: {"clamav", "malicious"}.
using LabelValues = std::vector<std::string>;

// The Content-Type of render()'s output.
inline constexpr std::string_view k_metrics_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

// Bucket upper bounds for latencies in seconds, 5 ms to 60 s (+Inf is implicit).
inline const std::vector<double> k_latency_buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1,     2.5,  5,     10,   30,  60};

// What every metric family shares: a name, a help text, label names, and a lock over its
// series. Methods that take LabelValues throw std::invalid_argument when their number differs
// from the number of label names.
class Family {
public:
  Family(std::string name, std::string help, std::vector<std::string> label_names);
  virtual ~Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return m_name; }
  const std::vector<std::string>& label_names() const { return m_label_names; }
  virtual std::string_view type() const = 0;
  // The HELP and TYPE lines and one line per series (per bucket, for histograms), series
  // ordered by their label values.
  void render(std::string& out) const;
  // `{a="x",b="y"}` (with `extra` appended, e.g. `le="0.5"`), or "" with no labels at all.
  std::string label_text(const LabelValues& values, std::string_view extra = {}) const;

protected:
  void check_arity(const LabelValues& values) const;
  virtual void render_series(std::string& out) const = 0; // called with m_mutex held

  mutable std::mutex m_mutex;

private:
  std::string m_name;
  std::string m_help;
  std::vector<std::string> m_label_names;
};

// A value that only goes up: bounties by outcome, deliveries by result, engine restarts.
class Counter : public Family {
public:
  using Family::Family;
  std::string_view type() const override { return "counter"; }
  // Adds `by` (>= 0; std::invalid_argument otherwise) to the series of `values`.
  void inc(const LabelValues& values = {}, double by = 1);
  double value(const LabelValues& values = {}) const; // 0 for a series never touched

private:
  void render_series(std::string& out) const override;
  std::map<LabelValues, double> m_values;
};

// A value that goes up and down: queue depth, engine state.
class Gauge : public Family {
public:
  using Family::Family;
  std::string_view type() const override { return "gauge"; }
  void set(const LabelValues& values, double v);
  void inc(const LabelValues& values = {}, double by = 1);
  void dec(const LabelValues& values = {}, double by = 1) { inc(values, -by); }
  double value(const LabelValues& values = {}) const; // 0 for a series never touched

private:
  void render_series(std::string& out) const override;
  std::map<LabelValues, double> m_values;
};

// Observations counted into fixed buckets: scan latency. Rendered as cumulative
// name_bucket{le="..."} series (ending with le="+Inf"), name_sum and name_count.
class Histogram : public Family {
public:
  // `buckets`: finite upper bounds, strictly increasing (std::invalid_argument otherwise);
  // +Inf is added. "le" may not be a label name.
  Histogram(std::string name, std::string help, std::vector<std::string> label_names,
            std::vector<double> buckets);
  std::string_view type() const override { return "histogram"; }
  const std::vector<double>& buckets() const { return m_buckets; }
  void observe(const LabelValues& values, double v);

  struct Snapshot {
    std::vector<std::uint64_t> counts; // per bucket, not cumulative; the last one is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot(const LabelValues& values = {}) const; // zeros for a series never touched

private:
  void render_series(std::string& out) const override;
  std::vector<double> m_buckets;
  std::map<LabelValues, Snapshot> m_series;
};

// The registry. Families are created on first use and live as long as the registry; asking
// again for the same name returns the same family when its type, label names (and buckets)
// match, and throws std::invalid_argument otherwise, as it does for invalid metric or label
// names (names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*, not
// starting with "__"). All methods are thread-safe; returned references stay valid.
class Metrics {
public:
  Counter& counter(const std::string& name, const std::string& help,
                   const std::vector<std::string>& label_names = {});
  Gauge& gauge(const std::string& name, const std::string& help,
               const std::vector<std::string>& label_names = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<std::string>& label_names,
                       const std::vector<double>& buckets = k_latency_buckets);

  // Every family, ordered by name: "# HELP", "# TYPE", then its series. A family without
  // labels shows a zero series before its first update; a family with labels shows only
  // the series that were touched.
  std::string render() const;

private:
  template <typename T, typename... Args>
  T& get(const std::string& name, const std::string& help,
         const std::vector<std::string>& label_names, Args&&... args);

  mutable std::mutex m_mutex;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> m_families;
};

// Text-format helpers, exposed for tests. A sample value: integers without a fraction ("3"),
// otherwise the shortest text that reads back the same ("0.012"); "+Inf", "-Inf", "NaN".
std::string format_value(double v);
// A label value between double quotes: \ → \\, " → \", newline → \n.
std::string escape_label_value(std::string_view v);
// A HELP text: \ → \\, newline → \n.
std::string escape_help(std::string_view v);

} // namespace pss::http

#include "http/metrics.hpp"

#include <cmath>
#include <doctest/doctest.h>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using pss::http::Metrics;

TEST_CASE("http::format_value") {
  using pss::http::format_value;
  CHECK(format_value(0) == "0");
  CHECK(format_value(3) == "3");
  CHECK(format_value(-2) == "-2");
  CHECK(format_value(0.012) == "0.012");
  CHECK(format_value(0.1 + 0.2) == "0.30000000000000004");
  CHECK(format_value(100000) == "100000");
  CHECK(format_value(1e15 - 1) == "999999999999999");
  CHECK(format_value(1e21) == "1e+21");
  CHECK(format_value(0.00001) == "1e-05");
  CHECK(format_value(-0.0) == "0");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("http::escaping") {
  using pss::http::escape_help;
  using pss::http::escape_label_value;
  CHECK(escape_label_value(R"(C:\a "b")"
                           "\nc") == R"(C:\\a \"b\"\nc)");
  CHECK(escape_label_value("plain é") == "plain é");
  CHECK(escape_help("a \\ \"q\"\nb") == R"(a \\ "q"\nb)");
}

TEST_CASE("http::Metrics render") {
  Metrics m;

  SUBCASE("a small registry, exactly") {
    auto& bounties = m.counter("pss_bounties_total", "Bounties by outcome", {"outcome"});
    bounties.inc({"accepted"});
    bounties.inc({"accepted"});
    bounties.inc({"rejected"}, 3);
    auto& depth = m.gauge("pss_queue_depth", "Bounties waiting for a slot");
    depth.set({}, 7);
    depth.dec();
    auto& latency =
        m.histogram("pss_scan_seconds", "Scan latency", {"engine"}, {0.005, 0.01, 0.5, 60});
    latency.observe({"clamav"}, 0.012);
    latency.observe({"clamav"}, 0.004);
    latency.observe({"clamav"}, 100);
    latency.observe({"acme"}, 0.01); // exactly a bound: counted in that bucket (le)
    m.counter("pss_deliveries_total", "Deliveries by result", {"result"}); // never touched
    m.counter("pss_engine_restarts_total", "Engine restarts");             // no labels

    CHECK(m.render() == R"(# HELP pss_bounties_total Bounties by outcome
# TYPE pss_bounties_total counter
pss_bounties_total{outcome="accepted"} 2
pss_bounties_total{outcome="rejected"} 3
# HELP pss_deliveries_total Deliveries by result
# TYPE pss_deliveries_total counter
# HELP pss_engine_restarts_total Engine restarts
# TYPE pss_engine_restarts_total counter
pss_engine_restarts_total 0
# HELP pss_queue_depth Bounties waiting for a slot
# TYPE pss_queue_depth gauge
pss_queue_depth 6
# HELP pss_scan_seconds Scan latency
# TYPE pss_scan_seconds histogram
pss_scan_seconds_bucket{engine="acme",le="0.005"} 0
pss_scan_seconds_bucket{engine="acme",le="0.01"} 1
pss_scan_seconds_bucket{engine="acme",le="0.5"} 1
pss_scan_seconds_bucket{engine="acme",le="60"} 1
pss_scan_seconds_bucket{engine="acme",le="+Inf"} 1
pss_scan_seconds_sum{engine="acme"} 0.01
pss_scan_seconds_count{engine="acme"} 1
pss_scan_seconds_bucket{engine="clamav",le="0.005"} 1
pss_scan_seconds_bucket{engine="clamav",le="0.01"} 1
pss_scan_seconds_bucket{engine="clamav",le="0.5"} 2
pss_scan_seconds_bucket{engine="clamav",le="60"} 2
pss_scan_seconds_bucket{engine="clamav",le="+Inf"} 3
pss_scan_seconds_sum{engine="clamav"} 100.016
pss_scan_seconds_count{engine="clamav"} 3
)");
  }

  SUBCASE("several labels, escaped values, escaped help") {
    auto& scans =
        m.counter("pss_scans_total", "Scans by engine\nand \\verdict\\", {"engine", "verdict"});
    scans.inc({"we\"ird\\eng\nine", "malicious"});
    scans.inc({"clamav", "benign"}, 0.5);
    CHECK(m.render() == R"(# HELP pss_scans_total Scans by engine\nand \\verdict\\
# TYPE pss_scans_total counter
pss_scans_total{engine="clamav",verdict="benign"} 0.5
pss_scans_total{engine="we\"ird\\eng\nine",verdict="malicious"} 1
)");
  }

  SUBCASE("an unlabelled histogram shows zeros; default buckets") {
    m.histogram("pss_delivery_seconds", "Delivery latency", {});
    std::string text = m.render();
    CHECK(text.find("pss_delivery_seconds_bucket{le=\"0.005\"} 0\n") != std::string::npos);
    CHECK(text.find("pss_delivery_seconds_bucket{le=\"2.5\"} 0\n") != std::string::npos);
    CHECK(text.find("pss_delivery_seconds_bucket{le=\"60\"} 0\n") != std::string::npos);
    CHECK(text.find("pss_delivery_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
    CHECK(text.find("pss_delivery_seconds_sum 0\npss_delivery_seconds_count 0\n") !=
          std::string::npos);
  }

  SUBCASE("an empty registry renders nothing") {
    CHECK(m.render().empty());
  }
}

TEST_CASE("http::Metrics families") {
  Metrics m;
  SUBCASE("the same name gives the same family") {
    auto& a = m.counter("c_total", "help", {"x"});
    auto& b = m.counter("c_total", "other help", {"x"});
    CHECK(&a == &b);
    auto& h1 = m.histogram("h", "help", {}, {1, 2});
    CHECK(&h1 == &m.histogram("h", "help", {}, {1, 2}));
  }
  SUBCASE("a clash of type, labels or buckets throws") {
    m.counter("c_total", "help", {"x"});
    CHECK_THROWS_AS(m.gauge("c_total", "help", {"x"}), std::invalid_argument);
    CHECK_THROWS_AS(m.counter("c_total", "help", {"y"}), std::invalid_argument);
    CHECK_THROWS_AS(m.counter("c_total", "help"), std::invalid_argument);
    m.histogram("h", "help", {}, {1, 2});
    CHECK_THROWS_AS(m.histogram("h", "help", {}, {1, 3}), std::invalid_argument);
  }
  SUBCASE("invalid names and buckets throw") {
    CHECK_THROWS_AS(m.counter("", "help"), std::invalid_argument);
    CHECK_THROWS_AS(m.counter("1abc", "help"), std::invalid_argument);
    CHECK_THROWS_AS(m.counter("a-b", "help"), std::invalid_argument);
    CHECK_NOTHROW(m.counter("job:a_b:rate5m", "help"));
    CHECK_THROWS_AS(m.counter("a", "help", {"a:b"}), std::invalid_argument);
    CHECK_THROWS_AS(m.counter("b", "help", {"__reserved"}), std::invalid_argument);
    CHECK_THROWS_AS(m.counter("c", "help", {"x", "x"}), std::invalid_argument);
    CHECK_THROWS_AS(m.histogram("d", "help", {"le"}), std::invalid_argument);
    CHECK_THROWS_AS(m.histogram("e", "help", {}, {1, 1}), std::invalid_argument);
    CHECK_THROWS_AS(m.histogram("f", "help", {}, {2, 1}), std::invalid_argument);
    CHECK_THROWS_AS(m.histogram("g", "help", {}, {1, std::numeric_limits<double>::infinity()}),
                    std::invalid_argument);
    CHECK(m.render() == "# HELP job:a_b:rate5m help\n# TYPE job:a_b:rate5m counter\n"
                        "job:a_b:rate5m 0\n"); // nothing half-registered
  }
  SUBCASE("wrong numbers of label values and negative increments throw") {
    auto& c = m.counter("c_total", "help", {"x"});
    CHECK_THROWS_AS(c.inc(), std::invalid_argument);
    CHECK_THROWS_AS(c.inc({"a", "b"}), std::invalid_argument);
    CHECK_THROWS_AS(c.inc({"a"}, -1), std::invalid_argument);
    CHECK_THROWS_AS(c.inc({"a"}, std::nan("")), std::invalid_argument);
    CHECK(c.value({"a"}) == 0);
    auto& g = m.gauge("g", "help", {"x"});
    CHECK_THROWS_AS(g.set({}, 1), std::invalid_argument);
    g.set({"a"}, -4.5);
    CHECK(g.value({"a"}) == -4.5);
    auto& h = m.histogram("h", "help", {"e"}, {1});
    CHECK_THROWS_AS(h.observe({}, 1), std::invalid_argument);
  }
}

TEST_CASE("http::Metrics concurrent updates") {
  Metrics m;
  constexpr int k_threads = 4;
  constexpr int k_per_thread = 25000;
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&m, t] {
      // Each thread registers the families itself: registration is thread-safe too.
      auto& c = m.counter("pss_bounties_total", "Bounties by outcome", {"outcome"});
      auto& g = m.gauge("pss_queue_depth", "Queue depth");
      auto& h = m.histogram("pss_scan_seconds", "Scan latency", {"engine"});
      for (int i = 0; i < k_per_thread; ++i) {
        c.inc({"accepted"});
        c.inc({t % 2 == 0 ? "even" : "odd"});
        g.inc();
        h.observe({"clamav"}, 0.25);
        if (i % 1000 == 0) {
          (void)m.render(); // readers run alongside writers
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  auto& c = m.counter("pss_bounties_total", "Bounties by outcome", {"outcome"});
  CHECK(c.value({"accepted"}) == k_threads * k_per_thread);
  CHECK(c.value({"even"}) == k_threads / 2 * k_per_thread);
  CHECK(c.value({"odd"}) == k_threads / 2 * k_per_thread);
  CHECK(m.gauge("pss_queue_depth", "Queue depth").value() == k_threads * k_per_thread);
  auto s = m.histogram("pss_scan_seconds", "Scan latency", {"engine"}).snapshot({"clamav"});
  CHECK(s.count == k_threads * k_per_thread);
  CHECK(s.sum == 0.25 * k_threads * k_per_thread);
  std::string text = m.render();
  CHECK(text.find("pss_bounties_total{outcome=\"accepted\"} 100000\n") != std::string::npos);
  CHECK(text.find("pss_scan_seconds_bucket{engine=\"clamav\",le=\"0.1\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("pss_scan_seconds_bucket{engine=\"clamav\",le=\"0.25\"} 100000\n") !=
        std::string::npos);
  CHECK(text.find("pss_scan_seconds_count{engine=\"clamav\"} 100000\n") != std::string::npos);
}

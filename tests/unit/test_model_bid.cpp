#include "model/bid.hpp"
#include "model/verdict.hpp"

#include <cmath>
#include <doctest/doctest.h>
#include <limits>
#include <string>

using namespace pss::model;

TEST_CASE("model::verdict") {
  SUBCASE("names round-trip") {
    for (const Verdict v :
         {Verdict::malicious, Verdict::benign, Verdict::suspicious, Verdict::unknown}) {
      const auto parsed = parse_verdict(to_string(v));
      REQUIRE(parsed.has_value());
      CHECK(*parsed == v);
    }
    CHECK(to_string(Verdict::malicious) == "malicious");
    CHECK(to_string(Verdict::benign) == "benign");
    CHECK(to_string(Verdict::suspicious) == "suspicious");
    CHECK(to_string(Verdict::unknown) == "unknown");
  }
  SUBCASE("parsing is case-insensitive") {
    CHECK(parse_verdict("MALICIOUS") == Verdict::malicious);
    CHECK(parse_verdict("Benign") == Verdict::benign);
    CHECK(parse_verdict("sUsPiCiOuS") == Verdict::suspicious);
  }
  SUBCASE("anything else is rejected") {
    CHECK_FALSE(parse_verdict("").has_value());
    CHECK_FALSE(parse_verdict("clean").has_value());
    CHECK_FALSE(parse_verdict(" malicious").has_value());
    CHECK_FALSE(parse_verdict("malicious ").has_value());
  }
}

TEST_CASE("model::bid") {
  const BidRules defaults;

  SUBCASE("default rules: the ends of the range are exact") {
    CHECK(defaults.min_allowed_bid == 62'500'000'000'000'000ULL);
    CHECK(defaults.max_allowed_bid == 999'900'000'000'000'000ULL);
    CHECK(rescale_to_bid(1.0, defaults) == 999'900'000'000'000'000ULL);
    CHECK(rescale_to_bid(0.0, defaults) == 62'500'000'000'000'000ULL);
    CHECK(rescale_to_bid(0.5, defaults) == 531'200'000'000'000'000ULL);
  }
  SUBCASE("confidence is clamped to [0, 1]") {
    CHECK(rescale_to_bid(1.5, defaults) == defaults.max_allowed_bid);
    CHECK(rescale_to_bid(-0.25, defaults) == defaults.min_allowed_bid);
    CHECK(rescale_to_bid(std::nan(""), defaults) == defaults.min_allowed_bid);
    CHECK(rescale_to_bid(std::numeric_limits<double>::infinity(), defaults) ==
          defaults.max_allowed_bid);
  }
  SUBCASE("rounding to the nearest wei") {
    CHECK(rescale_to_bid(0.5, {0, 3}) == 2);   // 1.5 → 2
    CHECK(rescale_to_bid(0.25, {0, 10}) == 3); // 2.5 → 3
    CHECK(rescale_to_bid(0.24, {0, 10}) == 2); // 2.4 → 2
    CHECK(rescale_to_bid(1.0 / 3.0, {0, 3}) == 1);
    CHECK(rescale_to_bid(0.123456789, {0, 1'000'000'000}) == 123'456'789);
    CHECK(rescale_to_bid(0.5, {100, 101}) == 101);
  }
  SUBCASE("no overflow over the whole 64-bit range") {
    constexpr Wei top = std::numeric_limits<Wei>::max();
    CHECK(rescale_to_bid(1.0, {0, top}) == top);
    CHECK(rescale_to_bid(0.0, {0, top}) == 0);
    CHECK(rescale_to_bid(0.5, {0, top}) == 9'223'372'036'854'775'808ULL); // 2^63
    CHECK(rescale_to_bid(1.0, {top - 1, top}) == top);
  }
  SUBCASE("max below min is treated as max == min") {
    CHECK(rescale_to_bid(0.0, {100, 50}) == 100);
    CHECK(rescale_to_bid(1.0, {100, 50}) == 100);
  }
  SUBCASE("bid_for: malicious and benign bid by confidence, the others bid 0") {
    CHECK(bid_for(Verdict::malicious, 1.0, defaults) == defaults.max_allowed_bid);
    CHECK(bid_for(Verdict::benign, 0.0, defaults) == defaults.min_allowed_bid);
    CHECK(bid_for(Verdict::benign, 0.5, {1000, 2000}) == 1500);
    CHECK(bid_for(Verdict::suspicious, 1.0, defaults) == 0);
    CHECK(bid_for(Verdict::unknown, 1.0, defaults) == 0);
    CHECK(bid_for(Verdict::unknown, 0.0, {5, 10}) == 0);
  }
}

TEST_CASE("model::bid scales") {
  SUBCASE("0-100 scale") {
    CHECK(confidence_from_percent(0) == 0.0);
    CHECK(confidence_from_percent(50) == 0.5);
    CHECK(confidence_from_percent(100) == 1.0);
    CHECK(confidence_from_percent(-5) == 0.0);
    CHECK(confidence_from_percent(250) == 1.0);
    CHECK(rescale_to_bid(confidence_from_percent(100), {}) == k_default_max_bid);
    CHECK(rescale_to_bid(confidence_from_percent(0), {}) == k_default_min_bid);
    CHECK(rescale_to_bid(confidence_from_percent(37), {0, 100}) == 37);
  }
  SUBCASE("DNI scale: every label") {
    const std::pair<const char*, int> scale[] = {
        {"Remote", 5},  {"Very unlikely", 15}, {"Unlikely", 30},       {"Even", 50},
        {"Likely", 70}, {"Very likely", 85},   {"Almost certain", 95}, {"Even chance", 50},
    };
    for (const auto& [label, percent] : scale) {
      const std::string label_{label}; // doctest shows a const char* as a pointer
      CAPTURE(label_);
      const auto c = confidence_from_dni(label);
      REQUIRE(c.has_value());
      CHECK(*c == doctest::Approx(percent / 100.0));
      CHECK(rescale_to_bid(*c, {0, 100}) == static_cast<Wei>(percent));
    }
  }
  SUBCASE("DNI scale: case, '_' and '-' for spaces") {
    CHECK(confidence_from_dni("VERY_LIKELY") == confidence_from_dni("Very likely"));
    CHECK(confidence_from_dni("very-unlikely") == confidence_from_dni("Very unlikely"));
    CHECK(confidence_from_dni("almost_certain") == confidence_from_dni("Almost certain"));
    CHECK(confidence_from_dni("EVEN-CHANCE") == confidence_from_dni("even"));
    REQUIRE(confidence_from_dni("remote").has_value());
    CHECK(*confidence_from_dni("remote") == doctest::Approx(0.05));
  }
  SUBCASE("DNI scale: the bid of 'Almost certain' with default rules") {
    const auto c = confidence_from_dni("Almost certain");
    REQUIRE(c.has_value());
    // 0.0625e18 + 0.95 * (0.9999e18 - 0.0625e18)
    CHECK(rescale_to_bid(*c, {}) == 953'030'000'000'000'000ULL);
  }
  SUBCASE("DNI scale: unknown labels") {
    CHECK_FALSE(confidence_from_dni("").has_value());
    CHECK_FALSE(confidence_from_dni("probable").has_value());
    CHECK_FALSE(confidence_from_dni("very").has_value());
    CHECK_FALSE(confidence_from_dni("likelyy").has_value());
  }
}

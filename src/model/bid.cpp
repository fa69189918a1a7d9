#include "model/bid.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>
#include <utility>

namespace pss::model {

namespace {

__extension__ typedef unsigned __int128 u128; // g++/clang; __extension__ silences -Wpedantic

// Confidence is quantized to 1e-9 before the exact integer interpolation: fine enough that the
// bid is within (max - min) / 2e9 wei of the real-valued one, coarse enough that the product
// (max - min) * parts fits easily in 128 bits.
constexpr std::uint64_t k_parts = 1'000'000'000ULL;

} // namespace

Wei rescale_to_bid(double confidence, const BidRules& rules) {
  const Wei min = rules.min_allowed_bid;
  const Wei max = std::max(rules.max_allowed_bid, min);
  if (!(confidence > 0.0)) { // also NaN
    confidence = 0.0;
  }
  confidence = std::min(confidence, 1.0);
  const auto parts = static_cast<std::uint64_t>(std::llround(confidence * double(k_parts)));
  const u128 span = max - min;
  const u128 scaled = (span * parts + k_parts / 2) / k_parts; // round to nearest
  return min + static_cast<Wei>(scaled);
}

Wei bid_for(Verdict v, double confidence, const BidRules& rules) {
  switch (v) {
  case Verdict::malicious:
  case Verdict::benign:
    return rescale_to_bid(confidence, rules);
  case Verdict::suspicious:
  case Verdict::unknown:
    break;
  }
  return 0;
}

double confidence_from_percent(int percent) {
  return std::clamp(percent, 0, 100) / 100.0;
}

std::optional<double> confidence_from_dni(std::string_view label) {
  static constexpr std::array<std::pair<std::string_view, int>, 8> k_scale{{
      {"remote", 5},
      {"very unlikely", 15},
      {"unlikely", 30},
      {"even", 50},
      {"even chance", 50},
      {"likely", 70},
      {"very likely", 85},
      {"almost certain", 95},
  }};
  // Normalize: lowercase, '_'/'-' as spaces, runs of spaces collapsed, trimmed.
  std::string norm;
  for (const char c : label) {
    const char n = (c == '_' || c == '-')
                       ? ' '
                       : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::isspace(static_cast<unsigned char>(n)) != 0) {
      if (!norm.empty() && norm.back() != ' ') {
        norm.push_back(' ');
      }
    } else {
      norm.push_back(n);
    }
  }
  if (!norm.empty() && norm.back() == ' ') {
    norm.pop_back();
  }
  for (const auto& [name, percent] : k_scale) {
    if (norm == name) {
      return confidence_from_percent(percent);
    }
  }
  return std::nullopt;
}

} // namespace pss::model

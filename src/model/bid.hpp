// Bids in wei: a confidence in [0, 1] maps linearly onto a bounty's [min, max] allowed bid.
// The 0-100 scale and the DNI (words of estimative probability) scale map through it.
#pragma once

#include "model/verdict.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace pss::model {

using Wei = std::uint64_t;

inline constexpr Wei k_default_min_bid = 62'500'000'000'000'000ULL;  // 0.0625e18
inline constexpr Wei k_default_max_bid = 999'900'000'000'000'000ULL; // 0.9999e18

struct BidRules {
  Wei min_allowed_bid = k_default_min_bid;
  Wei max_allowed_bid = k_default_max_bid;
};

// min + confidence * (max - min), exact in integer arithmetic (confidence clamped to [0, 1];
// max < min is treated as max == min).
Wei rescale_to_bid(double confidence, const BidRules& rules);
// Bid for a verdict: malicious and benign bid by confidence; suspicious and unknown bid 0.
Wei bid_for(Verdict v, double confidence, const BidRules& rules);

// 0-100 → confidence (clamped).
double confidence_from_percent(int percent);
// DNI scale: Remote 5, Very unlikely 15, Unlikely 30, Even 50, Likely 70, Very likely 85,
// Almost certain 95 (percent). Case-insensitive, '_' or '-' may stand for spaces.
std::optional<double> confidence_from_dni(std::string_view label);

} // namespace pss::model

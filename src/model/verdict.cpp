#include "model/verdict.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace pss::model {

namespace {

constexpr std::array<std::pair<Verdict, std::string_view>, 4> k_names{{
    {Verdict::malicious, "malicious"},
    {Verdict::benign, "benign"},
    {Verdict::suspicious, "suspicious"},
    {Verdict::unknown, "unknown"},
}};

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(
      a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

} // namespace

std::string_view to_string(Verdict v) {
  for (const auto& [verdict, name] : k_names) {
    if (verdict == v) {
      return name;
    }
  }
  return "unknown";
}

std::optional<Verdict> parse_verdict(std::string_view s) {
  for (const auto& [verdict, name] : k_names) {
    if (iequals(s, name)) {
      return verdict;
    }
  }
  return std::nullopt;
}

} // namespace pss::model

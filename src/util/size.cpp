#include "util/size.hpp"

#include "util/posix.hpp"

#include <limits>

namespace pss {

Result<std::uint64_t> parse_size(const std::string& s) {
  auto invalid = [&s] { return make_error("invalid size " + quote(s) + " (e.g. 100M, 2G, 4096)"); };
  if (s.empty() || s[0] < '0' || s[0] > '9') { // stoull would take "-1" and " 1"
    return invalid();
  }
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    return invalid();
  }
  std::string unit = s.substr(pos);
  std::uint64_t mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") {
    mult = 1ULL << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = 1ULL << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = 1ULL << 30;
  } else if (!unit.empty()) {
    return invalid();
  }
  if (v > std::numeric_limits<std::uint64_t>::max() / mult) {
    return make_error("size " + quote(s) + " is too large");
  }
  return v * mult;
}

std::string format_size(std::uint64_t bytes) {
  for (auto [shift, unit] : {std::pair{30, "GiB"}, std::pair{20, "MiB"}, std::pair{10, "KiB"}}) {
    std::uint64_t u = 1ULL << shift;
    if (bytes >= u && bytes % u == 0) {
      return std::to_string(bytes / u) + " " + unit;
    }
  }
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

} // namespace pss

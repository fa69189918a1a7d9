// Sizes as people write them: 4096, 100K, 512M, 2G (binary units).
#pragma once

#include "util/error.hpp"

#include <cstdint>
#include <string>

namespace pss {

// "16M" → 16777216. Error for anything else, and for sizes beyond 64 bits.
Result<std::uint64_t> parse_size(const std::string& s);

// 16777216 → "16 MiB", 1500 → "1500 bytes": the largest binary unit that divides it.
std::string format_size(std::uint64_t bytes);

} // namespace pss

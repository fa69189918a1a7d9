// Sizes on the command line: 4096, 100K, 512M, 2G (binary units).
#pragma once

#include "util/error.hpp"

#include <cstdint>
#include <string>

namespace pss::cli {

Result<std::uint64_t> parse_size(const std::string& s);

} // namespace pss::cli

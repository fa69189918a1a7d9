// Sizes on the command line: 4096, 100K, 512M, 2G (binary units). See util/size.hpp.
#pragma once

#include "util/size.hpp"

namespace pss::cli {

using pss::parse_size;

} // namespace pss::cli

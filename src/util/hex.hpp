// Hexadecimal: bytes to lowercase hex digits and back.
#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>

namespace pss {

// "\x01\xab" → "01ab".
std::string to_hex(std::string_view bytes);
// The value of one hex digit (either case), or -1.
int hex_value(char c);
// "01AB" → "\x01\xab"; Error for an odd length or a non-digit (with its offset).
Result<std::string> from_hex(std::string_view digits);

} // namespace pss

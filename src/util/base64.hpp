// Base64 (RFC 4648 §4, the standard alphabet with '=' padding), as Python's base64.b64encode
// writes it and kombu puts it in a Redis message body.
#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>

namespace pss {

// Any bytes → base64 text, padded to a multiple of 4, no line breaks.
std::string base64_encode(std::string_view bytes);

// Base64 text → bytes. ASCII whitespace (space, \t, \r, \n) is skipped; padding is required (as
// in Python's b64decode); unused bits of the last character are ignored. Error names the first
// offending character and its offset, or the bad length.
Result<std::string> base64_decode(std::string_view text);

} // namespace pss

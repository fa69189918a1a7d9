// RFC 3986 percent-decoding, for URIs (data:, file:) and broker URLs (user, password, vhost).
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace pss {

// Error on a truncated or non-hex escape, naming its offset: "truncated percent-escape at
// offset 3", "invalid percent-escape '%zz' at offset 1". '+' stays '+'.
Result<std::string> percent_decode(std::string_view s);

// The errors percent_decode gives, for decoders that stream.
Error truncated_percent_escape(std::size_t offset);
Error invalid_percent_escape(char hi, char lo, std::size_t offset);

// A byte as an error message shows it: itself when printable ASCII, else "\xNN".
std::string shown_char(char c);

} // namespace pss

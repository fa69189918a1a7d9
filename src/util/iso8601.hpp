// ISO 8601 times, one parser for every input that carries one (a bounty's expiration, a
// Celery task's eta and expires) and the formats we write.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace pss {

// "YYYY-MM-DDTHH:MM[:SS[.fraction]]" (T, t or a space), then "Z", "+hh:mm", "+hhmm", "+hh" or
// nothing (UTC), as Python's fromisoformat() and Celery read it; the fraction to nanoseconds.
// Error names the text and what is wrong.
Result<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

// UTC: "2026-11-24T14:46:43" then, with `microseconds`, ".925252" unless the fraction (cut to
// microseconds) is zero, then `suffix` ("Z", "+00:00", or "" for a naive time).
std::string format_iso8601(std::chrono::system_clock::time_point t, bool microseconds = false,
                           std::string_view suffix = "Z");

} // namespace pss

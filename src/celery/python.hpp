// Python's renderings, as Celery and kombu produce and read them: the JSON type that keeps
// key order as dicts do, json.dumps(), saferepr(), and ISO 8601 as datetime writes and Celery
// reads it. Pure. (docs/celery.md §1)
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::celery {

// JSON that keeps key order, as Python dicts do: a message re-sent is the message received, and
// kwargs reach the task in the order the client wrote them. (nlohmann::json converts to it.)
using Json = nlohmann::ordered_json;
using TimePoint = std::chrono::system_clock::time_point;

// ISO 8601 as Celery reads it (eta, expires): "YYYY-MM-DDTHH:MM[:SS[.fraction]]" (T or space),
// then "Z", "+hh:mm", "+hhmm", "+hh" or nothing (UTC). Error names the text and what is wrong.
Result<TimePoint> parse_isoformat(std::string_view text);
// Python's aware-UTC isoformat(): "2026-11-24T14:46:43.925252+00:00", the fraction (truncated
// to microseconds) omitted when zero.
std::string to_isoformat(TimePoint t);
// Python's naive utcnow().isoformat(): the same without "+00:00" (result date_done).
std::string to_isoformat_naive(TimePoint t);

// Python's repr() of a JSON value as Python loads it: None, True, 'text', [1, 'a'], {'k': 1}.
std::string python_repr(const Json& v);
// Python's json.dumps(value) with default options. Invalid UTF-8 in strings becomes U+FFFD.
std::string to_python_json(const Json& value);
// celery.utils.saferepr.saferepr(value, maxlen, maxlevels=3), the argsrepr/kwargsrepr of a task
// message: Python reprs of lists and dicts, strings in single quotes with only ' escaped
// (newlines stay raw), containers nested deeper than three levels as "[...]", and output
// beyond maxlen (in code points) cut with "...", as Python cuts it.
std::string saferepr(const Json& value, std::size_t maxlen = 1024);

} // namespace pss::celery

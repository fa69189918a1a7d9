// Reading the JSON of Celery's messages and results: parsing, fields, and errors that name the
// field and show the value ("celery message: headers.id must be a string, got number 7").
#pragma once

#include "celery/python.hpp"

#include <string>
#include <string_view>

namespace pss::celery {

// A JSON value as it appears in an error message, shortened.
std::string shown(const Json& v);
Error message_error(std::string_view what);
Error type_error(std::string_view field, std::string_view expected, const Json& v);
// Text → JSON; Error says where parsing failed (nlohmann's message without its tag).
Result<Json> parse_json(std::string_view text, std::string_view what);
// The member `key` of object `j`, or nullptr when absent or null.
const Json* member(const Json& j, std::string_view key);
// The string member `key` of `j`; Error names "<object_name>.<key>" when absent or no string.
Result<std::string> required_string(const Json& j, std::string_view object_name,
                                    std::string_view key);

} // namespace pss::celery

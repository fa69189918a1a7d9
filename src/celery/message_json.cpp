#include "celery/message_json.hpp"

#include <fmt/format.h>

namespace pss::celery {

// A JSON value as it appears in an error message, shortened.
std::string shown(const Json& v) {
  std::string s = to_python_json(v);
  if (s.size() > 60) {
    s = s.substr(0, 57) + "...";
  }
  return s;
}

Error message_error(std::string_view what) {
  return make_error(fmt::format("celery message: {}", what));
}

Error type_error(std::string_view field, std::string_view expected, const Json& v) {
  return message_error(
      fmt::format("{} must be {}, got {} {}", field, expected, v.type_name(), shown(v)));
}

// Text → JSON; Error says where parsing failed (nlohmann's message without its tag).
Result<Json> parse_json(std::string_view text, std::string_view what) {
  // nlohmann stops at a NUL as at the end of the input: "{...}\0junk" would parse, and the
  // copy kept for a redelivery (unacked_value) would then not.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    return make_error(fmt::format("{} is not JSON (a NUL byte at offset {})", what, nul));
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) { // parse_error, and out_of_range for a number like 1e999
    std::string_view why = e.what();
    if (const auto tag_end = why.find("] ");
        why.starts_with("[json.exception.") && tag_end != std::string_view::npos) {
      why.remove_prefix(tag_end + 2);
    }
    return make_error(fmt::format("{} is not JSON ({})", what, why));
  }
}

// The member `key` of object `j`, or nullptr when absent or null.
const Json* member(const Json& j, std::string_view key) {
  const auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

Result<std::string> required_string(const Json& j, std::string_view object_name,
                                    std::string_view key) {
  const std::string field = fmt::format("{}.{}", object_name, key);
  const Json* v = member(j, key);
  if (v == nullptr) {
    return message_error(fmt::format("{} is missing", field));
  }
  if (!v->is_string()) {
    return type_error(field, "a string", *v);
  }
  return v->get<std::string>();
}

} // namespace pss::celery

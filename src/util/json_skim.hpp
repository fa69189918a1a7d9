// Reads the top level of a JSON object text without building a tree: its members' keys and
// where their values lie, for callers that must not copy a large value (a data: artifact).
#pragma once

#include <functional>
#include <string_view>

namespace pss {

struct JsonMember {
  std::string_view key;   // as written between its quotes: escapes are not decoded
  std::string_view value; // the value's text; a string's with its quotes
};

// Calls `visit` for each top-level member of the object `json`, in order (duplicates
// included). Strings, with their escapes, and nested objects and arrays are skipped whole,
// so a key inside them, or inside a string, is never taken for a top-level one. Returns false
// if `json` is not an object, or is malformed in a way the skimmer sees (an unterminated
// string, unbalanced brackets, a missing ':' or ','); `visit` may have been called by then.
// The skimmer checks no more than that: not numbers, literals, escapes, UTF-8 or which kind
// of bracket closes which (true does not mean valid JSON). It allocates nothing.
bool for_each_top_level_member(std::string_view json,
                               const std::function<void(const JsonMember&)>& visit);

} // namespace pss

#include "util/json_skim.hpp"

#include <cstddef>
#include <cstring>

namespace pss {

namespace {

constexpr std::size_t k_none = std::string_view::npos;

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r'; // JSON's whitespace (RFC 8259 §2)
}

std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && is_ws(s[i])) {
    ++i;
  }
  return i;
}

// `i` at a '"': the index just past the closing quote, or k_none. memchr finds the quote
// (strings can be megabytes of base64); a backslash before it means an escape to step over.
std::size_t skip_string(std::string_view s, std::size_t i) {
  const char* base = s.data();
  const std::size_t n = s.size();
  for (++i; i < n;) {
    const void* quote = std::memchr(base + i, '"', n - i);
    if (quote == nullptr) {
      return k_none;
    }
    auto q = static_cast<std::size_t>(static_cast<const char*>(quote) - base);
    const void* backslash = std::memchr(base + i, '\\', q - i);
    if (backslash == nullptr) {
      return q + 1;
    }
    i = static_cast<std::size_t>(static_cast<const char*>(backslash) - base) + 2; // its escape
  }
  return k_none;
}

// `i` at a value's first character: the index just past it, or k_none. Nested brackets are
// counted, not matched by kind: no stack, whatever the depth.
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) {
    return k_none;
  }
  char first = s[i];
  if (first == '"') {
    return skip_string(s, i);
  }
  if (first == '{' || first == '[') {
    std::size_t depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == k_none) {
          return k_none;
        }
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          return i + 1;
        }
      }
      ++i;
    }
    return k_none;
  }
  // A number or a literal: up to the next delimiter.
  std::size_t start = i;
  while (i < s.size() && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != '"' &&
         s[i] != '{' && s[i] != '[' && s[i] != ':') {
    ++i;
  }
  return i == start ? k_none : i;
}

} // namespace

bool for_each_top_level_member(std::string_view json,
                               const std::function<void(const JsonMember&)>& visit) {
  std::size_t i = skip_ws(json, 0);
  if (i >= json.size() || json[i] != '{') {
    return false;
  }
  i = skip_ws(json, i + 1);
  if (i < json.size() && json[i] == '}') {
    return skip_ws(json, i + 1) == json.size();
  }
  for (;;) {
    if (i >= json.size() || json[i] != '"') {
      return false;
    }
    std::size_t key_end = skip_string(json, i);
    if (key_end == k_none) {
      return false;
    }
    std::string_view key = json.substr(i + 1, key_end - i - 2);
    i = skip_ws(json, key_end);
    if (i >= json.size() || json[i] != ':') {
      return false;
    }
    i = skip_ws(json, i + 1);
    std::size_t value_end = skip_value(json, i);
    if (value_end == k_none) {
      return false;
    }
    visit(JsonMember{key, json.substr(i, value_end - i)});
    i = skip_ws(json, value_end);
    if (i >= json.size()) {
      return false;
    }
    if (json[i] == '}') {
      return skip_ws(json, i + 1) == json.size();
    }
    if (json[i] != ',') {
      return false;
    }
    i = skip_ws(json, i + 1);
  }
}

} // namespace pss

#include "celery/python.hpp"

#include "util/iso8601.hpp"

#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <vector>

namespace pss::celery {

namespace {

// --- Python's json.dumps -------------------------------------------------------------------

// A scalar (or a string) as json.dumps writes it: nlohmann's output with ensure_ascii matches
// it (lowercase \u escapes, surrogate pairs, shortest round-trip floats).
std::string dump_scalar(const Json& v) {
  return v.dump(-1, ' ', true, Json::error_handler_t::replace);
}

void write_python_json(std::string& out, const Json& v) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : v.items()) {
      if (!first) {
        out += ", ";
      }
      first = false;
      out += dump_scalar(Json(key));
      out += ": ";
      write_python_json(out, value);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& value : v) {
      if (!first) {
        out += ", ";
      }
      first = false;
      write_python_json(out, value);
    }
    out += ']';
  } else {
    out += dump_scalar(v);
  }
}

// --- celery.utils.saferepr ----------------------------------------------------------------

// Python's len() of UTF-8 text: code points (continuation bytes do not count).
std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::ranges::count_if(
      s, [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

// The byte length of the first n code points of s.
std::size_t prefix_bytes(std::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (std::size_t seen = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && seen++ == n) {
      break;
    }
  }
  return i;
}

// celery.utils.text.truncate(s, maxlen): past maxlen, cut at the last space and add "...".
std::string truncate(std::string_view s, std::size_t maxlen) {
  if (maxlen == 0 || code_points(s) < maxlen) {
    return std::string(s);
  }
  std::string_view head = s.substr(0, prefix_bytes(s, maxlen));
  if (const auto space = head.rfind(' '); space != std::string_view::npos) {
    head = head.substr(0, space);
  }
  return std::string(head) + "...";
}

struct ReprToken {
  enum class Kind { open, close, separator, quoted, plain };
  Kind kind;
  std::string text; // the literal, the raw string (quoted) or the rendered scalar (plain)
};

// The token stream of saferepr's reprstream(): containers open and close, elements are
// separated; containers at level >= maxlevels (3) are a single "[...]" or "{...}".
void repr_tokens(const Json& v, int level, std::vector<ReprToken>& out) {
  using Kind = ReprToken::Kind;
  constexpr int k_maxlevels = 3;
  if (v.is_array() || v.is_object()) {
    const bool is_object = v.is_object();
    const std::string open = is_object ? "{" : "[";
    const std::string close = is_object ? "}" : "]";
    if (level >= k_maxlevels) {
      out.push_back({Kind::plain, open + "..." + close});
      return;
    }
    out.push_back({Kind::open, open});
    std::size_t i = 0;
    for (const auto& [key, value] : v.items()) {
      if (i++ > 0) {
        out.push_back({Kind::separator, ", "});
      }
      if (is_object) {
        out.push_back({Kind::quoted, key});
        out.push_back({Kind::separator, ": "});
      }
      repr_tokens(value, level + 1, out);
    }
    out.push_back({Kind::close, close});
  } else if (v.is_string()) {
    out.push_back({Kind::quoted, v.get<std::string>()});
  } else if (v.is_null()) {
    out.push_back({Kind::plain, "None"});
  } else if (v.is_boolean()) {
    out.push_back({Kind::plain, v.get<bool>() ? "True" : "False"});
  } else {
    out.push_back({Kind::plain, dump_scalar(v)}); // Python's str() of a number
  }
}

// Python's repr() of a str: single quotes unless only the other kind avoids escaping.
std::string python_str_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

// Python's repr() of a JSON-decoded value (for exception messages).

} // namespace

std::string python_repr(const Json& v) {
  if (v.is_string()) {
    return python_str_repr(v.get_ref<const std::string&>());
  }
  if (v.is_null()) {
    return "None";
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "True" : "False";
  }
  if (v.is_array() || v.is_object()) {
    std::string out = v.is_object() ? "{" : "[";
    std::size_t i = 0;
    for (const auto& [key, value] : v.items()) {
      if (i++ > 0) {
        out += ", ";
      }
      if (v.is_object()) {
        out += python_str_repr(key) + ": ";
      }
      out += python_repr(value);
    }
    return out + (v.is_object() ? "}" : "]");
  }
  return dump_scalar(v);
}

// --- Python renderings ----------------------------------------------------------------------

Result<TimePoint> parse_isoformat(std::string_view s) {
  return parse_iso8601(s);
}

std::string to_isoformat(TimePoint t) {
  return format_iso8601(t, true, "+00:00");
}

std::string to_isoformat_naive(TimePoint t) {
  return format_iso8601(t, true, "");
}

std::string to_python_json(const Json& value) {
  std::string out;
  write_python_json(out, value);
  return out;
}

std::string saferepr(const Json& value, std::size_t maxlen) {
  using Kind = ReprToken::Kind;
  std::vector<ReprToken> tokens;
  repr_tokens(value, 0, tokens);
  // _saferepr(): each token is rendered against what is left of maxlen; once nothing is left,
  // ", ..." and the closing brackets of the containers still open end the text.
  auto left = static_cast<long long>(maxlen);
  std::vector<std::string> open;
  std::string out;
  for (const auto& token : tokens) {
    const bool exhausted = left <= 0;
    if (token.kind == Kind::open) {
      open.push_back(token.text == "[" ? "]" : "}");
    } else if (token.kind == Kind::close && !open.empty()) {
      open.pop_back();
    }
    if (exhausted) {
      out += ", ...";
      for (auto it = open.rbegin(); it != open.rend(); ++it) {
        out += *it;
      }
      return out;
    }
    std::string text;
    switch (token.kind) {
    case Kind::quoted: {
      std::string quoted = truncate(token.text, static_cast<std::size_t>(left));
      text.reserve(quoted.size() + 2);
      text.push_back('\'');
      for (const char c : quoted) {
        if (c == '\'') {
          text.push_back('\\');
        }
        text.push_back(c);
      }
      text.push_back('\'');
      break;
    }
    case Kind::plain:
      text = truncate(token.text, static_cast<std::size_t>(left));
      break;
    default:
      text = token.text;
    }
    out += text;
    left -= static_cast<long long>(code_points(text));
  }
  return out;
}

} // namespace pss::celery

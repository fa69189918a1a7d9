#include "env/expand.hpp"

namespace pss::env {

Result<std::string> expand(std::string_view text, const Lookup& lookup) {
  static const std::map<std::string, std::string> k_none;
  return expand(text, lookup, k_none);
}

Result<std::string> expand(std::string_view text, const Lookup& lookup,
                           const std::map<std::string, std::string>& placeholders) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && !placeholders.empty()) {
      auto close = text.find('}', i + 1);
      if (close != std::string_view::npos) {
        std::string name(text.substr(i + 1, close - i - 1));
        bool word =
            !name.empty() &&
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
        if (auto it = placeholders.find(name); word && it != placeholders.end()) {
          out += it->second;
          i = close;
          continue;
        }
      }
      out.push_back(c);
      continue;
    }
    if (c != '$' || i + 1 >= text.size()) {
      out.push_back(c);
      continue;
    }
    if (text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out.push_back(c);
      continue;
    }
    auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      return make_error("unterminated '${' in '" + std::string(text) + "'");
    }
    std::string_view name = text.substr(i + 2, close - i - 2);
    auto value = lookup(name);
    if (!value) {
      return make_error("unknown variable ${" + std::string(name) + "}");
    }
    out += *value;
    i = close;
  }
  return out;
}

} // namespace pss::env

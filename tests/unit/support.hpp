// Helpers the unit tests share: what a Result's error says, substring checks.
#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>

namespace pss::test {

// The error's message, or "(no error)": a CHECK on it then shows what came instead.
template <typename T>
std::string error_of(const pss::Result<T>& r) {
  return r ? std::string("(no error)") : r.error().message;
}

inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

} // namespace pss::test

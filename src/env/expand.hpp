// ${VAR} expansion for manifests and config templates. Never a shell: no commands, no globs.
#pragma once

#include "util/error.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pss::env {

using Lookup = std::function<std::optional<std::string>(std::string_view name)>;

// Replaces each ${NAME} with lookup(NAME); "$$" is a literal "$"; a "$" not followed by
// "{" or "$" is kept. Error for an unknown variable (named) or an unterminated "${".
Result<std::string> expand(std::string_view text, const Lookup& lookup);

// Same, and in one pass (values are never re-scanned) {name} placeholders: a "{" followed by
// lowercase letters, digits or '_' and "}" is replaced when `placeholders` knows the name, else
// kept.
Result<std::string> expand(std::string_view text, const Lookup& lookup,
                           const std::map<std::string, std::string>& placeholders);

} // namespace pss::env

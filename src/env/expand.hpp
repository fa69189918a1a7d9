// ${VAR} expansion for manifests and config templates. Never a shell: no commands, no globs.
#pragma once

#include "util/error.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pss::env {

using Lookup = std::function<std::optional<std::string>(std::string_view name)>;

// Replaces each ${NAME} with lookup(NAME); "$$" is a literal "$"; a "$" not followed by
// "{" or "$" is kept. Error for an unknown variable (named) or an unterminated "${".
Result<std::string> expand(std::string_view text, const Lookup& lookup);

} // namespace pss::env

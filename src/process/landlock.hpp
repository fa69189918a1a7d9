// Confining a child's writes to some folders with Landlock (Linux 5.13 and later): the
// parent builds the ruleset; the child, between fork and exec, only applies it. Reading and
// running programs are not restricted, nor is anything for root's sake: Landlock binds root
// too, which file permissions do not.
#pragma once

#include "util/error.hpp"
#include "util/posix.hpp"

#include <filesystem>
#include <vector>

namespace pss::process {

// A ruleset that denies creating, writing, truncating, removing and renaming files anywhere
// but beneath `dirs` (a file there, e.g. /dev/null: writing it). Error when the kernel has no
// Landlock (or it is disabled) or a folder cannot be opened.
Result<UniqueFd> write_ruleset(const std::vector<std::filesystem::path>& dirs);

// In the child (async-signal-safe): no new privileges, then the ruleset. 0, or -1 and errno.
int restrict_self(int ruleset_fd);

} // namespace pss::process

// Expands command-line inputs: directories are recursed in a stable (byte-wise sorted)
// order; symlinks to directories are not followed (no loops); other inputs pass through.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace pss::artifact {

struct WalkError {
  std::string input; // the path that could not be read
  std::string message;
};

// Appends the expanded inputs to `out`; unreadable directories are reported in `errors`
// and the walk goes on.
void expand_inputs(const std::vector<std::string>& inputs, std::vector<std::string>& out,
                   std::vector<WalkError>& errors);

} // namespace pss::artifact

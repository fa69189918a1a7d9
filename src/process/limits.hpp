// Resource limits of a child process, set with setrlimit between fork and exec. Kept apart
// from child.hpp so that manifests can hold them without Asio's headers.
#pragma once

#include <cstdint>
#include <optional>

namespace pss::process {

struct ResourceLimits {
  // RLIMIT_CPU: SIGXCPU after this many seconds of CPU time, SIGKILL one second later.
  std::optional<std::uint64_t> cpu_seconds;
  std::optional<std::uint64_t> address_space; // RLIMIT_AS, bytes
  std::optional<std::uint64_t> open_files;    // RLIMIT_NOFILE
  bool operator==(const ResourceLimits&) const = default;
};

} // namespace pss::process

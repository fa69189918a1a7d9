// FUZZ_CHECK: an invariant a fuzz target asserts. On failure it prints the condition and aborts,
// so libFuzzer saves the input as a crash (assert() would vanish with -DNDEBUG).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

namespace pss::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Takes a length-prefixed piece off the front of `in`: the first byte (mod what is left) is the
// length. Lets one input carry several fields (key, body, signature, ...).
inline std::string_view take(std::string_view& in) {
  if (in.empty()) {
    return {};
  }
  std::size_t n = static_cast<unsigned char>(in.front());
  in.remove_prefix(1);
  n = in.empty() ? 0 : n % (in.size() + 1);
  std::string_view piece = in.substr(0, n);
  in.remove_prefix(n);
  return piece;
}

} // namespace pss::fuzz

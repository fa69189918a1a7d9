#include "util/memory.hpp"

#include <cstdlib>
#include <cstring>
#include <doctest/doctest.h>
#include <fstream>
#include <string>
#include <vector>

// glibc's allocator only: AddressSanitizer replaces malloc (and keeps freed blocks in its
// quarantine), so there is nothing of glibc's to observe.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PSS_SANITIZED_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PSS_SANITIZED_MALLOC 1
#endif
#if defined(__GLIBC__) && !defined(PSS_SANITIZED_MALLOC)
#define PSS_GLIBC_MALLOC 1
#include <malloc.h>
#endif

#if defined(PSS_GLIBC_MALLOC)
namespace {

// Where blocks escape to, so that the compiler keeps each malloc/free pair.
void* volatile g_escape = nullptr;

void* touched_block(std::size_t n) {
  void* p = std::malloc(n);
  REQUIRE(p != nullptr);
  std::memset(p, 1, n);
  g_escape = p;
  return p;
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

} // namespace
#endif

#if defined(PSS_GLIBC_MALLOC)
TEST_CASE("util::tune_allocator") {
  pss::tune_allocator();
  // Untuned, freeing this mmapped block would raise glibc's threshold past 1 MiB, and the next
  // block of that size would come from the heap, to stay there once freed.
  std::free(touched_block(1 << 20));
  const auto mapped_before = ::mallinfo2().hblks;
  void* second = touched_block(1 << 20);
  CHECK(::mallinfo2().hblks == mapped_before + 1); // a mapping of its own
  std::free(second);
  CHECK(::mallinfo2().hblks == mapped_before); // and unmapped when freed
}

TEST_CASE("util::return_free_memory") {
  // 64 MiB in 64 KiB heap blocks (below the mmap threshold), each pinned in place by a small
  // block after it that stays: freed, they are holes the heap keeps until trimmed.
  constexpr std::size_t k_blocks = 1024;
  std::vector<void*> large;
  std::vector<void*> pins;
  for (std::size_t i = 0; i < k_blocks; ++i) {
    large.push_back(touched_block(64 * 1024));
    pins.push_back(touched_block(64));
  }
  for (void* p : large) {
    std::free(p);
  }
  const long held = rss_kib();
  CHECK(pss::return_free_memory());
  const long trimmed = rss_kib();
  CAPTURE(held);
  CAPTURE(trimmed);
  CHECK(held - trimmed > 48 * 1024); // most of the 64 MiB went back
  for (void* p : pins) {
    std::free(p);
  }
}
#endif

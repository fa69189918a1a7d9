#include "util/memory.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pss {

void tune_allocator() {
#if defined(__GLIBC__)
  ::mallopt(M_MMAP_THRESHOLD, static_cast<int>(k_mmap_threshold));
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(k_trim_threshold));
#endif
}

bool return_free_memory() {
#if defined(__GLIBC__)
  return ::malloc_trim(0) != 0;
#else
  return false;
#endif
}

} // namespace pss

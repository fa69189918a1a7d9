// The allocator after a burst: large buffers (request bodies) given back to the system once
// freed, and the heap's free pages returned when a queue drains. glibc; no-ops elsewhere.
#pragma once

#include <cstddef>

namespace pss {

// What tune_allocator fixes glibc's mmap and trim thresholds at: glibc's own starting values.
constexpr std::size_t k_mmap_threshold = 128 * 1024;
constexpr std::size_t k_trim_threshold = 128 * 1024;

// For a long-lived server (the webhook, a worker): call once at its start, before its threads.
// glibc raises its mmap threshold to the size of each mmapped block freed (up to 32 MiB): after
// the first 1 MB request body is freed, later ones are carved from the heap, and a burst of
// them stays resident after it drained (1 GB of a 1,000 x 1.4 MB burst, bench/alloc_burst).
// Fixing the thresholds (which ends that adjustment) keeps every block from 128 KiB up in a
// mapping of its own, unmapped when freed, and trims the heap's top beyond 128 KiB free. The
// cost: an mmap/munmap pair and its page faults for each such block.
// https://sourceware.org/glibc/manual/latest/html_node/Memory-Allocation-Tunables.html
void tune_allocator();

// Gives the free memory of every heap back to the system, free pages inside them included
// (glibc's malloc_trim(0)). True if some was returned. Costs ~1 ms after tune_allocator,
// ~90 ms when a 1 GB burst is left in the heap: call it when a queue drains, not per request.
bool return_free_memory();

} // namespace pss

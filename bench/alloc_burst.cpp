// RSS of a burst like the webhook's flood, under glibc's allocator as it comes and with
// util/memory's tune_allocator() and return_free_memory(): one thread reads N request bodies
// (grown by 64 KiB appends, as a socket read grows its buffer), keeps a copy of each (as a
// parsed bounty keeps its URI) and a few small strings, frees the read buffer and queues the
// rest; once all are queued, two threads drain the queue. Each variant runs in a process of its
// own (the allocator's settings are per process). Prints figures; passes or fails on none.
// Usage: alloc_burst [N] [BODY_BYTES]    (default 1000 bodies of 1.4 MB)
#include "util/memory.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

long status_kib(const char* field) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind(field, 0) == 0) {
      return std::stol(line.substr(std::string(field).size()));
    }
  }
  return -1;
}

double mib(long kib) {
  return static_cast<double>(kib) / 1024.0;
}

struct Item {
  std::string body;               // what the queue holds of the request
  std::vector<std::string> small; // a parsed bounty's other strings
};

struct Variant {
  const char* name;
  bool tune;
  bool trim;
  bool spooled; // the body decoded to a file as it arrived: the queue holds a small one
};

void run(const Variant& v, std::size_t n, std::size_t body_size) {
  if (v.tune) {
    pss::tune_allocator();
  }
  const long idle = status_kib("VmRSS:");
  std::deque<std::unique_ptr<Item>> queue;
  std::thread reader([&] {
    const std::string piece(64 * 1024, 'x');
    for (std::size_t i = 0; i < n; ++i) {
      auto item = std::make_unique<Item>();
      std::string read_buffer;
      while (read_buffer.size() < body_size) {
        read_buffer.append(piece, 0, std::min(piece.size(), body_size - read_buffer.size()));
      }
      item->body = v.spooled ? std::string(300, 'b') : read_buffer; // a copy: parsed
      for (int k = 0; k < 20; ++k) {
        item->small.emplace_back(200 + k * 10, 's');
      }
      queue.push_back(std::move(item));
    }
  });
  reader.join();
  const long peak = status_kib("VmHWM:");
  std::mutex m;
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        std::unique_ptr<Item> item;
        {
          std::lock_guard<std::mutex> g(m);
          if (queue.empty()) {
            return;
          }
          item = std::move(queue.front());
          queue.pop_front();
        }
        std::string answer(300, 'a'); // the scan's answer, built and sent
        item.reset();
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  const long drained = status_kib("VmRSS:");
  double trim_ms = 0;
  long trimmed = drained;
  if (v.trim) {
    auto t0 = std::chrono::steady_clock::now();
    pss::return_free_memory();
    trim_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    trimmed = status_kib("VmRSS:");
  }
  std::printf("%-28s %8.1f %8.1f %8.1f %8.1f %8.2f\n", v.name, mib(idle), mib(peak), mib(drained),
              mib(trimmed), trim_ms);
}

} // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  const std::size_t body = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1400000;
  std::printf("%zu bodies of %zu bytes, queued, then drained by 2 threads; RSS in MiB\n", n, body);
  std::printf("%-28s %8s %8s %8s %8s %8s\n", "variant", "idle", "peak", "drained", "trimmed",
              "trim ms");
  const Variant variants[] = {
      {"glibc as it comes", false, false, false},
      {"tune_allocator", true, false, false},
      {"return_free_memory", false, true, false},
      {"tune + return_free_memory", true, true, false},
      {"spooled", false, false, true},
      {"spooled, tune + return", true, true, true},
  };
  std::fflush(stdout);
  for (const Variant& v : variants) {
    pid_t pid = ::fork(); // a fresh allocator each time
    if (pid == 0) {
      run(v, n, body);
      std::fflush(stdout);
      std::_Exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "variant '%s' failed\n", v.name);
      return 1;
    }
  }
  return 0;
}

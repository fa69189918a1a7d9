// Benchmark: how fast process::Child drains a child that floods its output, on the real code
// path (the captured-stdout reader and the stderr line pump), against baselines measured in
// the same run: the same flood through `cat` (what the pipe between two processes can do), and
// a plain blocking read() loop in this process. Prints MB/s (10^6 bytes); never fails on timing.
// Usage: drain_bench [MIB] [RUNS]   (default: 1024 MiB per flood, the median of 5 runs)
#include "process/child.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pss::process::Child;
using pss::process::SpawnSpec;

namespace {

struct Run {
  double seconds = 0;
  std::string note; // what the reader kept: a check that it did its work
};

SpawnSpec shell(const std::string& script) {
  SpawnSpec s;
  s.argv = {"/bin/sh", "-c", script};
  s.name = "flood";
  return s;
}

// Spawns `spec` and runs the io_context until it has no work left: the child reaped and its
// pipes read to end-of-file.
Run run_child(SpawnSpec spec) {
  asio::io_context io;
  bool capture = spec.capture_stdout;
  auto started = std::chrono::steady_clock::now();
  auto child = Child::spawn(io.get_executor(), std::move(spec)).value();
  Run r;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await child->wait_for(1h);
        if (capture) {
          auto out = co_await child->take_stdout();
          r.note = "kept " + std::to_string(out.bytes.size()) + " bytes of stdout" +
                   (out.truncated ? " (truncated)" : "");
        }
      },
      asio::detached);
  io.run();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!capture) {
    std::size_t longest = 0;
    auto tail = child->output_tail();
    for (const auto& l : tail) {
      longest = std::max(longest, l.size());
    }
    r.note = "tail: " + std::to_string(tail.size()) + " lines, longest " + std::to_string(longest) +
             " bytes";
  }
  child.reset(); // before the io_context it uses
  return r;
}

// The baseline in this process: blocking read()s of 64 KiB, nothing done with the bytes.
Run run_plain_read(const std::string& script) {
  asio::io_context io;
  SpawnSpec spec = shell(script);
  spec.stdio_pipes = true;
  auto started = std::chrono::steady_clock::now();
  auto child = Child::spawn(io.get_executor(), std::move(spec)).value();
  auto fd = child->take_stdout_pipe();
  std::vector<char> buf(64 * 1024);
  std::size_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n > 0) {
      total += static_cast<std::size_t>(n);
    } else if (!(n < 0 && errno == EINTR)) {
      break;
    }
  }
  asio::co_spawn(io, child->wait_for(1h), asio::detached);
  io.run();
  Run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  r.note = "read " + std::to_string(total) + " bytes";
  child.reset();
  return r;
}

struct Case {
  const char* name;
  std::function<Run()> measure;
};

struct Result {
  std::vector<double> seconds; // of each run
  std::string note;            // of the last run
  double median_rate(std::size_t bytes) const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    return static_cast<double>(bytes) / 1e6 / s[s.size() / 2];
  }
};

} // namespace

int main(int argc, char** argv) {
  long mib = argc > 1 ? std::atol(argv[1]) : 1024;
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  if (mib <= 0 || runs <= 0) {
    std::fprintf(stderr, "usage: drain_bench [MIB] [RUNS]\n");
    return 2;
  }
  std::size_t bytes = static_cast<std::size_t>(mib) * 1024 * 1024;
  std::string n = std::to_string(bytes);
  std::printf("%ld MiB per flood, %ld cores\n", mib, ::sysconf(_SC_NPROCESSORS_ONLN));

  std::string yes = "yes " + std::string(79, 'x') + " | head -c " + n;
  std::vector<Case> cases = {
      {"baseline: head | cat > /dev/null",
       [&] { return run_child(shell("head -c " + n + " /dev/zero | cat > /dev/null")); }},
      {"baseline: plain read() loop in this process",
       [&] { return run_plain_read("exec head -c " + n + " /dev/zero"); }},
      {"stdout, captured (16 MiB cap, rest drained)",
       [&] {
         SpawnSpec s = shell("exec head -c " + n + " /dev/zero");
         s.capture_stdout = true;
         return run_child(std::move(s));
       }},
      {"stderr, one line without newline",
       [&] { return run_child(shell("head -c " + n + " /dev/zero >&2")); }},
      {"baseline: yes (80-byte lines) | head | cat",
       [&] { return run_child(shell(yes + " | cat > /dev/null")); }},
      {"stderr, lines of 80 bytes (yes | head)", [&] { return run_child(shell(yes + " >&2")); }},
  };
  // Rounds over all cases rather than runs of one case: the scheduler's placement of the two
  // processes (one core or two) changes the rate by up to 3x, and drifts over time.
  std::vector<Result> results(cases.size());
  for (int i = 0; i < runs; ++i) {
    for (std::size_t c = 0; c < cases.size(); ++c) {
      Run r = cases[c].measure();
      results[c].seconds.push_back(r.seconds);
      results[c].note = r.note;
    }
  }
  std::vector<double> rates;
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const auto& s = results[c].seconds;
    auto [lo, hi] = std::minmax_element(s.begin(), s.end());
    rates.push_back(results[c].median_rate(bytes));
    std::printf("%-44s %6.0f MB/s  (median of %d, range %.0f-%.0f; %s)\n", cases[c].name,
                rates.back(), runs, static_cast<double>(bytes) / 1e6 / *hi,
                static_cast<double>(bytes) / 1e6 / *lo, results[c].note.c_str());
  }
  std::printf("against their cat baselines: stdout %.2fx, stderr %.2fx, stderr lines %.2fx\n",
              rates[2] / rates[0], rates[3] / rates[0], rates[5] / rates[4]);
  return 0;
}

#include "process/child.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cerrno>
#include <csignal>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pss::process::Child;
using pss::process::SpawnSpec;

// A spec from its first fields (the rest default), as aggregate initialization with the
// trailing fields left out would warn (-Wmissing-field-initializers).
static SpawnSpec spec_of(std::vector<std::string> argv,
                         std::optional<std::map<std::string, std::string>> env,
                         std::filesystem::path cwd, std::string name) {
  SpawnSpec s;
  s.argv = std::move(argv);
  s.env = std::move(env);
  s.cwd = std::move(cwd);
  s.name = std::move(name);
  return s;
}

namespace {
// Runs a coroutine to completion on a fresh io_context.
template <typename F>
auto run(F f) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, f(io.get_executor()), asio::use_future);
  io.run();
  return fut.get();
}

// True while a non-zombie process of the group exists. (Orphans reparented to a PID 1 that
// does not reap linger as zombies here; they are dead, not leftovers.)
bool group_alive(int pgid) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) {
      continue;
    }
    auto close = line.rfind(')');
    if (close == std::string::npos) {
      continue;
    }
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    int ppid = 0;
    int pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z') {
      return true;
    }
  }
  return false;
}

// What a child printed, read to the end.
struct Printed {
  std::vector<std::string> lines; // passed to on_line
  std::vector<std::string> tail;  // output_tail()
  pss::process::ExitStatus status;
  pss::process::CapturedOutput out; // with capture_stdout
};

// Runs the child until it has exited and its output has been read to end-of-file: io.run()
// returns only once no read is pending, so nothing here waits for the pump by sleeping.
Printed run_to_eof(SpawnSpec spec) {
  asio::io_context io;
  Printed p;
  spec.on_line = [&p](const std::string& line) { p.lines.push_back(line); };
  bool capture = spec.capture_stdout;
  auto child = Child::spawn(io.get_executor(), std::move(spec)).value();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto status = co_await child->wait_for(120s);
        REQUIRE(status);
        p.status = *status;
        if (capture) {
          p.out = co_await child->take_stdout();
        }
      },
      asio::detached);
  io.run();
  p.tail = child->output_tail();
  child.reset(); // before the io_context
  return p;
}

Printed run_to_eof(const std::string& script) {
  return run_to_eof(spec_of({"/bin/sh", "-c", script}, {}, {}, "t"));
}
} // namespace

TEST_CASE("process::Child") {
  SUBCASE("exit code and output") {
    auto [status, tail] =
        run([](asio::any_io_executor ex)
                -> asio::awaitable<std::pair<pss::process::ExitStatus, std::vector<std::string>>> {
          auto child =
              Child::spawn(
                  ex, spec_of({"/bin/sh", "-c", "echo hello; echo err >&2; exit 3"}, {}, {}, "t"))
                  .value();
          auto s = co_await child->wait_for(5s);
          co_return std::pair{*s, child->output_tail()};
        });
    CHECK(status.code == 3);
    CHECK(status.describe() == "exited with status 3");
    // The pump may lag the exit by a moment; both lines are captured eventually.
    CHECK(tail.size() <= 2);
  }
  SUBCASE("stop sends SIGTERM to the group") {
    auto status = run([](asio::any_io_executor ex) -> asio::awaitable<pss::process::ExitStatus> {
      auto child = Child::spawn(ex, spec_of({"sleep", "30"}, {}, {}, "sleep")).value();
      co_return co_await child->stop(2s);
    });
    CHECK(status.signal == SIGTERM);
    CHECK(status.describe() == "killed by signal 15 (SIGTERM)");
  }
  SUBCASE("a child ignoring SIGTERM is killed, with its grandchildren") {
    int pgid = 0;
    auto status = run([&](asio::any_io_executor ex) -> asio::awaitable<pss::process::ExitStatus> {
      auto child = Child::spawn(ex, spec_of({"/bin/sh", "-c",
                                             "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"},
                                            {}, {}, "stubborn"))
                       .value();
      pgid = child->pid();
      // Stop only once the trap is in place.
      for (int i = 0; i < 250 && child->output_tail().empty(); ++i) {
        asio::steady_timer t(ex, 20ms);
        co_await t.async_wait(asio::use_awaitable);
      }
      co_return co_await child->stop(300ms);
    });
    CHECK(status.signal == SIGKILL);
    // The grandchild `sleep` was in the same group: gone too (allow it a moment to die).
    for (int i = 0; i < 50 && group_alive(pgid); ++i) {
      std::this_thread::sleep_for(20ms);
    }
    CHECK_FALSE(group_alive(pgid));
  }
  SUBCASE("environment and working directory") {
    auto p = run_to_eof(spec_of({"/bin/sh", "-c", "echo \"$FOO $(pwd)\""},
                                std::map<std::string, std::string>{{"FOO", "bar"}}, "/", "env"));
    CHECK(p.tail == std::vector<std::string>{"bar /"});
  }
  SUBCASE("missing program is a clear error") {
    asio::io_context io;
    auto r = Child::spawn(io.get_executor(), spec_of({"no-such-program-pss"}, {}, {}, "x"));
    REQUIRE(!r);
    CHECK(r.error().message == "cannot start 'no-such-program-pss': not found on PATH");
  }
  SUBCASE("destroying a running child kills and reaps it") {
    asio::io_context io;
    int pid = 0;
    {
      auto child = Child::spawn(io.get_executor(), spec_of({"sleep", "30"}, {}, {}, "s")).value();
      pid = child->pid();
    }
    CHECK(::kill(pid, 0) != 0); // no zombie either: reaped
  }
}

TEST_CASE("process::Child captured stdout") {
  SUBCASE("stdout apart from stderr") {
    SpawnSpec spec = spec_of({"/bin/sh", "-c", "echo result; echo noise >&2"}, {}, {}, "cap");
    spec.capture_stdout = true;
    auto p = run_to_eof(spec);
    CHECK(p.out.bytes == "result\n");
    CHECK_FALSE(p.out.truncated);
    CHECK(p.tail == std::vector<std::string>{"noise"});
  }
  SUBCASE("a grandchild holding the pipe open does not delay the result") {
    auto started = std::chrono::steady_clock::now();
    int pgid = 0;
    auto out = run([&](asio::any_io_executor ex) -> asio::awaitable<pss::process::CapturedOutput> {
      SpawnSpec spec = spec_of({"/bin/sh", "-c", "echo result; sleep 30 &"}, {}, {}, "cap");
      spec.capture_stdout = true;
      auto child = Child::spawn(ex, spec).value();
      pgid = child->pid();
      auto status = co_await child->wait_for(5s);
      REQUIRE(status);
      auto o = co_await child->take_stdout();
      child->kill_stragglers();
      co_return o;
    });
    CHECK(out.bytes == "result\n");
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    for (int i = 0; i < 50 && group_alive(pgid); ++i) {
      std::this_thread::sleep_for(20ms);
    }
    CHECK_FALSE(group_alive(pgid)); // the straggler is gone
  }
  SUBCASE("output beyond the cap is dropped and flagged") {
    auto out = run([](asio::any_io_executor ex) -> asio::awaitable<pss::process::CapturedOutput> {
      SpawnSpec spec = spec_of({"/bin/sh", "-c", "head -c 100000 /dev/zero"}, {}, {}, "big");
      spec.capture_stdout = true;
      spec.max_stdout = 1000;
      auto child = Child::spawn(ex, spec).value();
      co_await child->wait_for(5s);
      co_return co_await child->take_stdout();
    });
    CHECK(out.bytes.size() == 1000);
    CHECK(out.truncated);
  }
  SUBCASE("output beyond the cap is still read to the end") {
    // Without kill_on_overflow the child is not stopped: it must not block on a full pipe.
    SpawnSpec spec = spec_of({"head", "-c", "268435456", "/dev/zero"}, {}, {}, "big");
    spec.capture_stdout = true;
    spec.max_stdout = 1 << 20;
    auto p = run_to_eof(spec);
    CHECK(p.status.success());
    CHECK(p.out.bytes.size() == 1 << 20);
    CHECK(p.out.truncated);
  }
}

TEST_CASE("process::Child output after exit") {
  // A helper the child left holds the output pipe (Wine's services.exe does): reading stops a
  // moment after the child's exit, so the event loop ends instead of waiting for the helper.
  auto dir = pss::TempDir::create(pss::temp_base_dir(), "pss-grace-").value();
  auto pidfile = dir.path() / "helper.pid";
  auto p = run_to_eof("echo before; sleep 600 & echo $! > " + pidfile.native() + "; exit 0");
  CHECK(p.status.success());
  CHECK(p.tail == std::vector<std::string>{"before"});
  int helper = 0;
  std::ifstream(pidfile) >> helper;
  REQUIRE(helper > 0);
  CHECK(::kill(helper, 0) == 0); // it still held the pipe when the loop ended
  ::kill(helper, SIGKILL);
}

TEST_CASE("process::Child output lines") {
  SUBCASE("many lines, split across reads, each whole and in order") {
    auto p = run_to_eof("seq 1 200000 >&2");
    REQUIRE(p.lines.size() == 200000);
    bool in_order = true;
    for (std::size_t i = 0; i < p.lines.size() && in_order; ++i) {
      in_order = p.lines[i] == std::to_string(i + 1);
    }
    CHECK(in_order);
    REQUIRE(p.tail.size() == 30);
    CHECK(p.tail.front() == "199971");
    CHECK(p.tail.back() == "200000");
  }
  SUBCASE("a line longer than a read") {
    auto p = run_to_eof("head -c 300000 /dev/zero | tr '\\0' x >&2; echo >&2; echo next >&2");
    REQUIRE(p.lines.size() == 2);
    CHECK(p.lines[0] == std::string(300000, 'x')); // passed on whole
    CHECK(p.lines[1] == "next");
    REQUIRE(p.tail.size() == 2);
    CHECK(p.tail[0] == std::string(4096, 'x') + "..."); // kept shortened
    CHECK(p.tail[1] == "next");
  }
  SUBCASE("CRLF") {
    auto p = run_to_eof("printf 'one\\r\\ntwo\\r\\n\\r\\n' >&2");
    CHECK(p.lines == std::vector<std::string>{"one", "two", ""});
    CHECK(p.tail == p.lines);
  }
  SUBCASE("an over-long line is cut, and the line after it is intact") {
    auto p = run_to_eof("head -c 3000000 /dev/zero | tr '\\0' y >&2; echo >&2; echo after >&2");
    REQUIRE(p.lines.size() == 2);
    CHECK(p.lines[0] == std::string(1 << 20, 'y') + "...");
    CHECK(p.lines[1] == "after");
    REQUIRE(p.tail.size() == 2);
    CHECK(p.tail[0] == std::string(4096, 'y') + "...");
    CHECK(p.tail[1] == "after");
  }
  SUBCASE("the last line without newline is kept") {
    auto p = run_to_eof("printf 'first\\nlast words' >&2");
    CHECK(p.lines == std::vector<std::string>{"first"});
    CHECK(p.tail == std::vector<std::string>{"first", "last words"});
  }
  SUBCASE("stdout and stderr merged when stdout is not captured") {
    auto p = run_to_eof("echo out; echo err >&2");
    CHECK(p.lines == std::vector<std::string>{"out", "err"});
  }
}

namespace {
// Runs argv to its end and returns its stdout and exit status.
std::pair<std::string, pss::process::ExitStatus> run_capture(SpawnSpec spec) {
  return run([spec = std::move(spec)](asio::any_io_executor ex) mutable
             -> asio::awaitable<std::pair<std::string, pss::process::ExitStatus>> {
    spec.capture_stdout = true;
    auto child = Child::spawn(ex, spec).value();
    auto status = co_await child->wait_for(20s);
    REQUIRE(status);
    auto out = co_await child->take_stdout();
    co_return std::pair{out.bytes, *status};
  });
}
} // namespace

TEST_CASE("process::Child fork hazard") {
  // A regular file's descriptor registered with the io_context: epoll refuses it (EPERM),
  // which Asio accepts, but Asio's notify_fork(fork_child) throws when it re-adds it to a
  // new epoll set. A launcher calling notify_fork in the child then returns into our code
  // in a copy of this process. Child::spawn must exec exactly once, and return only here.
  auto dir =
      std::filesystem::temp_directory_path() / ("pss-fork-hazard-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto ran = dir / "ran";
  auto runaway = dir / "runaway";
  pid_t self = ::getpid();
  {
    asio::io_context io;
    int fd = ::open((dir / "regular").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    asio::posix::stream_descriptor regular(io, fd); // registered, though not pollable
    SpawnSpec spec =
        spec_of({"/bin/sh", "-c", "echo ran >> \"$1\"", "sh", ran.native()}, {}, {}, "hazard");
    auto child = Child::spawn(io.get_executor(), spec);
    if (::getpid() != self) { // a copy of us came back from spawn: record it and vanish
      std::ofstream(runaway) << "runaway " << ::getpid() << "\n";
      ::_exit(0);
    }
    REQUIRE(child);
    auto status = asio::co_spawn(io, (*child)->wait_for(10s), asio::use_future);
    io.run();
    REQUIRE(status.get());
    CHECK((*child)->exit_status()->success());
  }
  std::this_thread::sleep_for(100ms); // a runaway copy would have written by now
  std::ifstream in(ran);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == "ran\n"); // the program ran, once
  CHECK_FALSE(std::filesystem::exists(runaway));
  std::filesystem::remove_all(dir);
}

TEST_CASE("process::Child sandbox") {
  SUBCASE("write_only_beneath: writes elsewhere are refused, even to root") {
    auto dir = pss::TempDir::create(pss::temp_base_dir(), "pss-ll-").value();
    auto inside = dir.path() / "in";
    auto outside = dir.path() / "out";
    std::filesystem::create_directory(inside);
    std::filesystem::create_directory(outside);
    SpawnSpec spec = spec_of({"/bin/sh", "-c",
                              "echo a > in/a && echo b > /dev/null && (echo c > out/c || "
                              "echo refused)"},
                             {}, dir.path(), "confined");
    spec.write_only_beneath = {inside, "/dev/null"};
    auto [out, status] = run_capture(spec);
    CHECK(status.success());
    CHECK(out == "refused\n");
    CHECK(std::filesystem::exists(inside / "a"));
    CHECK_FALSE(std::filesystem::exists(outside / "c"));
  }
  SUBCASE("resource limits are set in the child") {
    SpawnSpec spec =
        spec_of({"/bin/sh", "-c", "ulimit -n; ulimit -t; ulimit -v"}, {}, {}, "limits");
    spec.limits.open_files = 256;
    spec.limits.cpu_seconds = 7;
    spec.limits.address_space = 1024ULL * 1024 * 1024;
    auto [out, status] = run_capture(spec);
    CHECK(status.success());
    CHECK(out == "256\n7\n1048576\n"); // ulimit -v is in KiB
  }
  SUBCASE("umask") {
    SpawnSpec spec = spec_of({"/bin/sh", "-c", "umask"}, {}, {}, "umask");
    spec.umask = 077;
    CHECK(run_capture(spec).first == "0077\n");
  }
  SUBCASE("the environment given is all the child has") {
    SpawnSpec spec =
        spec_of({"/usr/bin/env"}, std::map<std::string, std::string>{{"ONLY", "this"}}, {}, "env");
    CHECK(run_capture(spec).first == "ONLY=this\n");
  }
  SUBCASE("no descriptor of ours is inherited, even one without O_CLOEXEC") {
    int leak = ::open("/dev/null", O_RDONLY); // no O_CLOEXEC, as a careless library would
    REQUIRE(leak >= 3);
    SpawnSpec spec = spec_of({"/bin/sh", "-c", "ls /proc/$$/fd"}, {}, {}, "fds");
    auto out = run_capture(spec).first;
    ::close(leak);
    CHECK(out == "0\n1\n2\n");
  }
  SUBCASE("a CPU limit ends a busy loop with SIGXCPU") {
    SpawnSpec spec = spec_of({"/bin/sh", "-c", "while :; do :; done"}, {}, {}, "burn");
    spec.limits.cpu_seconds = 1;
    auto [out, status] = run_capture(spec);
    CHECK(status.signal == SIGXCPU);
    CHECK(status.describe() == "killed by signal 24 (SIGXCPU)");
    // Reported, but not compared with the limit: wait4's figure is sampled, and came out at
    // 0.84 s for a 1 s limit on a loaded machine.
    CHECK(status.cpu_time > 0ms);
  }
  SUBCASE("a failure between fork and exec is an error, and the child never returns") {
    SpawnSpec spec = spec_of({"/bin/true"}, {}, "/nonexistent-pss-dir", "cwd");
    asio::io_context io;
    auto r = Child::spawn(io.get_executor(), spec);
    REQUIRE(!r);
    CHECK(r.error().message == "cannot start '/bin/true': chdir: No such file or directory");
  }
  SUBCASE("output over the cap kills the group at once") {
    SpawnSpec spec = spec_of({"/usr/bin/yes"}, {}, {}, "yes");
    spec.max_stdout = 1 << 20;
    spec.kill_on_overflow = true;
    auto started = std::chrono::steady_clock::now();
    auto out = run([&](asio::any_io_executor ex)
                       -> asio::awaitable<std::pair<pss::process::CapturedOutput, int>> {
      spec.capture_stdout = true;
      auto child = Child::spawn(ex, spec).value();
      auto status = co_await child->wait_for(10s);
      REQUIRE(status);
      co_return std::pair{co_await child->take_stdout(), status->signal};
    });
    CHECK(out.first.truncated);
    CHECK(out.first.bytes.size() == 1 << 20);
    CHECK(out.second == SIGKILL);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
  }
  SUBCASE("a 256 MiB stderr flood without a newline keeps a bounded tail") {
    auto p = run_to_eof("head -c 268435456 /dev/zero >&2");
    CHECK(p.status.success()); // read to the end, not stopped
    CHECK(p.lines.empty());
    REQUIRE(p.tail.size() == 1);
    CHECK(p.tail[0] == std::string(4096, '\0') + "...");
  }
}

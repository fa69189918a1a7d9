#include "process/child.hpp"

#include "process/landlock.hpp"
#include "process/line_splitter.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pss::process {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t k_tail_line_max = 4096; // bytes of one output line kept for messages
// Bytes of one output line passed to the log and on_line (a worker's JSON log lines can be
// long); beyond, the line is cut and the rest dropped.
constexpr std::size_t k_line_max = 1 << 20;
// Per read of the output pipes: their default capacity, so that one read empties a full pipe
// (a larger buffer measured no faster: bench/drain_bench.cpp).
constexpr std::size_t k_read_size = 64 * 1024;
// How long output is still read after the child exited (its helpers' last words).
constexpr auto k_output_grace = std::chrono::seconds(2);

// Everything the child does between fork and exec, prepared by the parent: the child makes
// only async-signal-safe system calls and never returns into our code. We are
// multi-threaded (a lock of malloc, spdlog or Asio may be held by a thread that does not
// exist in the child), and Asio's notify_fork, which Boost.Process calls in the child,
// throws there when a registered descriptor cannot be re-added to epoll (a regular file):
// the exception then ran our own code in a copy of this process.
struct ExecPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr; // nullptr: ours
  int stdio[3] = {-1, -1, -1};
  int report = -1; // write end of a CLOEXEC pipe: {stage, errno} if the child fails
  pid_t parent = 0;
  int umask_value = -1;
  struct Limit {
    int resource;
    rlimit value;
  };
  std::array<Limit, 3> limits{};
  int nlimits = 0;
  int landlock = -1; // a ruleset to restrict ourselves with (SpawnSpec::write_only_beneath)
};

enum class Stage : int { session = 1, parent_gone, stdio, cwd, rlimit, landlock, exec };

const char* stage_text(Stage s) {
  switch (s) {
  case Stage::session:
    return "setsid";
  case Stage::parent_gone:
    return "parent exited";
  case Stage::stdio:
    return "dup2";
  case Stage::cwd:
    return "chdir";
  case Stage::rlimit:
    return "setrlimit";
  case Stage::landlock:
    return "landlock";
  case Stage::exec:
    return "execve";
  }
  return "?";
}

[[noreturn]] void child_fail(const ExecPlan& p, Stage stage) {
  int report[2] = {static_cast<int>(stage), errno};
  [[maybe_unused]] auto n = ::write(p.report, report, sizeof report);
  ::_exit(127);
}

// The child side. Async-signal-safe calls only; ends in execve or _exit(127).
[[noreturn]] void exec_child(const ExecPlan& p) {
  // Default dispositions for every signal: our handlers (Asio's signal_set writes into a
  // pipe it shares with us) must not run here, and what we ignore (SIGPIPE) must not be
  // inherited. All signals are blocked until just before exec (the parent blocked them).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::sigaction(sig, &dfl, nullptr); // EINVAL for glibc's internal signals: fine
    }
  }
  // A new session makes the child leader of its own process group, so signals to -pid reach
  // everything it starts, and terminal signals (Ctrl-C) sent to our group do not reach it
  // behind our back.
  if (::setsid() < 0) {
    child_fail(p, Stage::session);
  }
  // If we die without stopping it (SIGKILL, crash), the child gets SIGTERM instead of
  // living on as an orphan holding its socket. The getppid() check closes the race with a
  // parent that died before the prctl. (The signal follows the forking *thread*: spawn from
  // a thread that lives as long as the child, as the I/O thread does.)
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != p.parent) {
    errno = ESRCH;
    child_fail(p, Stage::parent_gone);
  }
  // Move the stdio sources above 2 first, so that dup2 cannot overwrite one with another.
  int src[3];
  for (int i = 0; i < 3; ++i) {
    src[i] = p.stdio[i];
    if (src[i] >= 0 && src[i] < 3) {
      src[i] = ::fcntl(src[i], F_DUPFD_CLOEXEC, 3);
      if (src[i] < 0) {
        child_fail(p, Stage::stdio);
      }
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (::dup2(src[i], i) < 0) { // dup2 clears close-on-exec on the target
      child_fail(p, Stage::stdio);
    }
  }
  // Nothing else of ours reaches the program: a descriptor somebody opened without
  // O_CLOEXEC (a library's socket) is closed at exec. The report pipe closes at exec too,
  // which is how the parent learns that exec succeeded.
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    rlimit nofile{};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    int max = nofile.rlim_cur == RLIM_INFINITY || nofile.rlim_cur > 65536
                  ? 65536
                  : static_cast<int>(nofile.rlim_cur);
    for (int fd = 3; fd < max; ++fd) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  if (p.cwd != nullptr && ::chdir(p.cwd) != 0) {
    child_fail(p, Stage::cwd);
  }
  if (p.umask_value >= 0) {
    ::umask(static_cast<mode_t>(p.umask_value));
  }
  for (int i = 0; i < p.nlimits; ++i) {
    if (::setrlimit(p.limits[i].resource, &p.limits[i].value) != 0) {
      child_fail(p, Stage::rlimit);
    }
  }
  if (p.landlock >= 0 && restrict_self(p.landlock) != 0) {
    child_fail(p, Stage::landlock);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(p.path, p.argv, p.envp);
  child_fail(p, Stage::exec);
}

// The limit as setrlimit wants it: never above the hard limit we have (only root may raise
// it), `extra` seconds between the soft and the hard limit (SIGXCPU, then SIGKILL).
ExecPlan::Limit make_limit(int resource, std::uint64_t value, std::uint64_t extra) {
  rlimit have{};
  ::getrlimit(resource, &have);
  rlim_t soft = static_cast<rlim_t>(value);
  rlim_t hard = static_cast<rlim_t>(value + extra);
  if (have.rlim_max != RLIM_INFINITY && ::geteuid() != 0) {
    hard = std::min(hard, have.rlim_max);
    soft = std::min(soft, hard);
  }
  return {resource, rlimit{soft, hard}};
}

const char* signal_name(int sig) {
  switch (sig) {
  case SIGTERM:
    return "SIGTERM";
  case SIGKILL:
    return "SIGKILL";
  case SIGSEGV:
    return "SIGSEGV";
  case SIGABRT:
    return "SIGABRT";
  case SIGINT:
    return "SIGINT";
  case SIGHUP:
    return "SIGHUP";
  case SIGBUS:
    return "SIGBUS";
  case SIGPIPE:
    return "SIGPIPE";
  case SIGXCPU:
    return "SIGXCPU";
  case SIGXFSZ:
    return "SIGXFSZ";
  case SIGILL:
    return "SIGILL";
  case SIGFPE:
    return "SIGFPE";
  case SIGQUIT:
    return "SIGQUIT";
  case SIGSYS:
    return "SIGSYS";
  default:
    return "signal";
  }
}

} // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) {
    return "killed by signal " + std::to_string(signal) + " (" + signal_name(signal) + ")";
  }
  return "exited with status " + std::to_string(code);
}

struct Child::Impl {
  asio::any_io_executor ex;
  std::string name;
  int pid = -1;
  std::optional<ExitStatus> status;
  std::deque<std::string> tail;
  std::size_t tail_max = 30;
  std::shared_ptr<asio::posix::stream_descriptor> stdout_pipe; // when capturing
  CapturedOutput captured;
  std::size_t max_stdout = 0;
  bool kill_on_overflow = false;
  bool capture_stopping = false; // take_stdout() asks the capture coroutine to end
  bool capture_running = false;
  std::shared_ptr<asio::steady_timer> capture_ended; // cancelled when it has ended
  // Timers of wait_for() callers, cancelled (woken) when the child is reaped.
  std::vector<std::weak_ptr<asio::steady_timer>> waiters;
  std::shared_ptr<spdlog::logger> logger;
  std::function<void(const std::string&)> on_line;
  UniqueFd stdin_write; // stdio_pipes: ours until taken
  UniqueFd stdout_read;
  // The output pipe outlives the child when something it started holds it (Wine's
  // services.exe inherits a server's stderr): once the child is reaped, reading goes on for
  // k_output_grace only, so that no read is left pending forever (an event loop with one
  // never ends). The descriptor stays open (its writers get no EPIPE) until the Child goes.
  std::weak_ptr<asio::posix::stream_descriptor> log_pipe;
  bool log_pump_running = false;
  std::shared_ptr<asio::steady_timer> log_grace;
  UniqueFd log_held;

  explicit Impl(asio::any_io_executor e) : ex(std::move(e)) {}

  void start_output_grace() {
    if (!log_pump_running || log_grace) {
      return;
    }
    log_grace = std::make_shared<asio::steady_timer>(ex, k_output_grace);
    log_grace->async_wait([pipe = log_pipe](boost::system::error_code ec) {
      if (auto p = pipe.lock(); p && !ec) {
        boost::system::error_code ignored;
        p->cancel(ignored);
      }
    });
  }

  void wake_waiters() {
    for (auto& w : waiters) {
      if (auto t = w.lock()) {
        t->cancel();
      }
    }
    waiters.clear();
  }

  void reaped(int wstatus, const rusage& usage) {
    ExitStatus s;
    if (WIFSIGNALED(wstatus)) {
      s.signal = WTERMSIG(wstatus);
    } else {
      s.code = WEXITSTATUS(wstatus);
    }
    auto us = [](const timeval& t) {
      return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
    };
    s.cpu_time = us(usage.ru_utime) + us(usage.ru_stime);
    status = s;
    wake_waiters();
    start_output_grace();
  }

  // Blocking reap (after SIGKILL); false if the child was reaped elsewhere.
  bool reap_blocking() {
    int wstatus = 0;
    rusage usage{};
    pid_t r = 0;
    while ((r = ::wait4(pid, &wstatus, 0, &usage)) < 0 && errno == EINTR) {
    }
    if (r == pid) {
      reaped(wstatus, usage);
      return true;
    }
    return false;
  }

  // A complete line of the child's output: to the debug log, the caller, and the tail.
  void output_line(std::string_view line) {
    logger->debug("{}: {}", name, line);
    if (on_line) {
      on_line(std::string(line));
    }
    keep_line(line);
  }

  // Keeps the last lines, each shortened: a scanner printing gigabytes without a newline
  // must not fill our memory through its messages. The oldest line's string is reused: a
  // flood of short lines costs no allocation per line.
  void keep_line(std::string_view line) {
    if (tail_max == 0) {
      return;
    }
    std::string kept;
    if (tail.size() >= tail_max) {
      kept = std::move(tail.front());
      tail.pop_front();
    }
    kept.assign(line.substr(0, k_tail_line_max));
    if (line.size() > k_tail_line_max) {
      kept += "...";
    }
    tail.push_back(std::move(kept));
  }

  // Non-blocking reap; true once the child is gone.
  bool try_reap() {
    if (status) {
      return true;
    }
    int wstatus = 0;
    rusage usage{};
    pid_t r = ::wait4(pid, &wstatus, WNOHANG, &usage);
    if (r == pid) {
      reaped(wstatus, usage);
      return true;
    }
    if (r < 0 && errno == ECHILD) { // reaped elsewhere: treat as gone
      status = ExitStatus{0, 0};
      wake_waiters();
      return true;
    }
    return false;
  }
};

namespace {

// Reads the child's merged output until EOF and hands it on line by line. Large reads and one
// memchr pass over each byte: a scanner flooding its output is drained about as fast as the
// pipe allows, even in a debug build (issue 13).
asio::awaitable<void> pump_output(std::shared_ptr<Child::Impl> impl,
                                  std::shared_ptr<asio::posix::stream_descriptor> pipe) {
  LineSplitter lines(k_line_max);
  std::vector<char> buf(k_read_size);
  for (;;) {
    auto [ec, n] =
        co_await pipe->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    lines.feed({buf.data(), n}, [&](std::string_view line) { impl->output_line(line); });
    if (ec == asio::error::operation_aborted && pipe->is_open()) {
      impl->log_held.reset(pipe->release()); // the grace is over: a grandchild holds it
      break;
    }
    if (ec) {
      break; // EOF, or the descriptor closed under us
    }
  }
  impl->log_pump_running = false;
  if (impl->log_grace) {
    impl->log_grace->cancel();
  }
  if (auto last = lines.finish()) { // no newline at the end
    impl->keep_line(*last);
  }
}

void append_capped(Child::Impl& impl, const char* data, std::size_t n) {
  std::size_t room = impl.max_stdout - std::min(impl.max_stdout, impl.captured.bytes.size());
  if (n > room) {
    if (!impl.captured.truncated && impl.kill_on_overflow && !impl.status) {
      ::kill(-impl.pid, SIGKILL);
    }
    impl.captured.truncated = true;
    n = room;
  }
  impl.captured.bytes.append(data, n);
}

// Collects stdout into memory (capped) until EOF or until take_stdout() closes the pipe.
asio::awaitable<void> capture_stdout(std::shared_ptr<Child::Impl> impl,
                                     std::shared_ptr<asio::posix::stream_descriptor> pipe) {
  std::array<char, k_read_size> buf{};
  for (;;) {
    auto [ec, n] =
        co_await pipe->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    append_capped(*impl, buf.data(), n); // a read completed before a cancel still counts
    if (ec || impl->capture_stopping) {
      break;
    }
  }
  impl->capture_running = false;
  if (impl->capture_ended) {
    impl->capture_ended->cancel();
  }
}

// Waits for the pidfd to become readable (the child exited), then reaps it.
asio::awaitable<void> watch_exit(std::shared_ptr<Child::Impl> impl,
                                 std::shared_ptr<asio::posix::stream_descriptor> pidfd) {
  for (;;) {
    auto [ec] = co_await pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                                           asio::as_tuple(asio::use_awaitable));
    if (impl->try_reap()) {
      impl->logger->debug("{} (pid {}) {}", impl->name, impl->pid, impl->status->describe());
      co_return;
    }
    if (ec) {
      co_return; // cancelled: the destructor reaps
    }
  }
}

} // namespace

std::optional<std::filesystem::path> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return std::filesystem::path(name);
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::filesystem::path p = std::filesystem::path(dir.empty() ? "." : dir) / name;
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
    if (colon == std::string_view::npos) {
      break;
    }
    dirs.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

Result<std::unique_ptr<Child>> Child::spawn(asio::any_io_executor ex, SpawnSpec spec) {
  if (spec.argv.empty()) {
    return make_error("cannot start a program: empty command line");
  }
  auto exe = find_program(spec.argv[0]);
  if (!exe) {
    return make_error("cannot start " + quote(spec.argv[0]) + ": not found on PATH");
  }
  if (::access(exe->c_str(), X_OK) != 0) {
    return errno_error("cannot start", *exe);
  }

  // log pipe: stderr (and stdout unless captured); out pipe: captured stdout.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return errno_error("cannot create a pipe for " + spec.name);
  }
  UniqueFd log_read(fds[0]);
  UniqueFd log_write(fds[1]);
  UniqueFd out_read;
  UniqueFd out_write;
  UniqueFd in_read;
  UniqueFd in_write;
  if (spec.stdio_pipes) {
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return errno_error("cannot create a pipe for " + spec.name);
    }
    in_read.reset(fds[0]);
    in_write.reset(fds[1]);
  }
  if (spec.capture_stdout || spec.stdio_pipes) {
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return errno_error("cannot create a pipe for " + spec.name);
    }
    out_read.reset(fds[0]);
    out_write.reset(fds[1]);
  }

  // Everything the child needs, as plain arrays, before fork (no allocation after it).
  std::vector<std::string> env_strings;
  if (spec.env) {
    for (const auto& [k, v] : *spec.env) {
      env_strings.push_back(k + "=" + v);
    }
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv;
  for (auto& a : argv_strings) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  auto impl = std::make_shared<Impl>(ex);
  impl->name = spec.name.empty() ? exe->filename().string() : spec.name;
  impl->tail_max = spec.tail_lines;
  impl->max_stdout = spec.max_stdout;
  impl->kill_on_overflow = spec.kill_on_overflow;
  impl->logger = log::get(impl->name);
  impl->on_line = std::move(spec.on_line);

  int out_fd = spec.capture_stdout || spec.stdio_pipes ? out_write.get() : log_write.get();
  if (!spec.stdio_pipes) {
    in_read.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_read) {
      return errno_error("cannot open", "/dev/null");
    }
  }
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return errno_error("cannot create a pipe for " + spec.name);
  }
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);

  ExecPlan plan;
  plan.path = exe->c_str();
  plan.argv = argv.data();
  plan.envp = spec.env ? envp.data() : environ;
  plan.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  plan.stdio[0] = in_read.get();
  plan.stdio[1] = out_fd;
  plan.stdio[2] = log_write.get();
  plan.report = report_write.get();
  plan.parent = ::getpid();
  plan.umask_value = spec.umask ? static_cast<int>(*spec.umask & 0777) : -1;
  const auto& lim = spec.limits;
  if (lim.cpu_seconds) {
    plan.limits[plan.nlimits++] = make_limit(RLIMIT_CPU, *lim.cpu_seconds, 1);
  }
  if (lim.address_space) {
    plan.limits[plan.nlimits++] = make_limit(RLIMIT_AS, *lim.address_space, 0);
  }
  if (lim.open_files) {
    plan.limits[plan.nlimits++] = make_limit(RLIMIT_NOFILE, *lim.open_files, 0);
  }
  UniqueFd ruleset; // open in the child until its exec (close-on-exec)
  if (!spec.write_only_beneath.empty()) {
    auto r = write_ruleset(spec.write_only_beneath);
    if (!r) {
      return make_error("cannot start " + quote(exe->native()) + " confined: " + r.error().message);
    }
    ruleset = std::move(*r);
    plan.landlock = ruleset.get();
  }

  // All signals blocked across fork, so that no handler of ours runs in the child before it
  // has reset them; the child unblocks them just before exec.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    exec_child(plan);
  }
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    errno = fork_errno;
    return errno_error("cannot start " + quote(exe->native()) + ": fork");
  }
  report_write.reset();
  int report[2] = {0, 0};
  ssize_t got = 0;
  while ((got = ::read(report_read.get(), report, sizeof report)) < 0 && errno == EINTR) {
  }
  if (got > 0) { // the child failed before or at exec, and exited 127
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    auto stage = static_cast<Stage>(report[0]);
    return make_error("cannot start " + quote(exe->native()) + ": " + stage_text(stage) + ": " +
                      std::strerror(report[1]));
  }
  impl->pid = pid;
  log_write.reset();
  out_write.reset();
  in_read.reset();
  if (spec.stdio_pipes) {
    impl->stdin_write = std::move(in_write);
    impl->stdout_read = std::move(out_read);
  }

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, impl->pid, 0));
  if (pidfd < 0) {
    ::kill(-impl->pid, SIGKILL);
    ::waitpid(impl->pid, nullptr, 0);
    return errno_error("pidfd_open for " + impl->name);
  }
  auto pidfd_desc = std::make_shared<asio::posix::stream_descriptor>(ex, pidfd);
  auto log_desc = std::make_shared<asio::posix::stream_descriptor>(ex, log_read.release());
  impl->log_pipe = log_desc;
  impl->log_pump_running = true;
  asio::co_spawn(ex, pump_output(impl, log_desc), asio::detached);
  if (spec.capture_stdout) {
    impl->stdout_pipe = std::make_shared<asio::posix::stream_descriptor>(ex, out_read.release());
    impl->capture_running = true;
    asio::co_spawn(ex, capture_stdout(impl, impl->stdout_pipe), asio::detached);
  }
  asio::co_spawn(ex, watch_exit(impl, pidfd_desc), asio::detached);
  impl->logger->debug("started {} (pid {})", impl->name, impl->pid);
  return std::unique_ptr<Child>(new Child(std::move(impl)));
}

asio::awaitable<CapturedOutput> Child::take_stdout() {
  auto impl = m_impl;
  if (impl->stdout_pipe && impl->stdout_pipe->is_open()) {
    // First let the capture coroutine finish the read it has in flight (its data comes
    // first), then read what is left in the pipe without waiting for end-of-file.
    impl->capture_stopping = true;
    if (impl->capture_running) {
      impl->capture_ended = std::make_shared<asio::steady_timer>(impl->ex);
      impl->capture_ended->expires_at(asio::steady_timer::time_point::max());
      impl->stdout_pipe->cancel();
      while (impl->capture_running) {
        co_await impl->capture_ended->async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
    int fd = impl->stdout_pipe->native_handle();
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    std::array<char, k_read_size> buf{};
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n > 0) {
        append_capped(*impl, buf.data(), static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      break; // EOF, EAGAIN (a grandchild holds the pipe), or an error
    }
    boost::system::error_code ignored;
    impl->stdout_pipe->close(ignored);
  }
  co_return std::move(impl->captured);
}

Child::~Child() {
  if (m_impl && !m_impl->try_reap()) {
    ::kill(-m_impl->pid, SIGKILL);
    m_impl->reap_blocking();
  }
}

UniqueFd Child::take_stdin() {
  return std::move(m_impl->stdin_write);
}

UniqueFd Child::take_stdout_pipe() {
  return std::move(m_impl->stdout_read);
}

int Child::pid() const {
  return m_impl->pid;
}
bool Child::running() const {
  return !m_impl->try_reap();
}
std::optional<ExitStatus> Child::exit_status() const {
  m_impl->try_reap();
  return m_impl->status;
}

void Child::signal_group(int sig) const {
  if (!m_impl->try_reap()) {
    ::kill(-m_impl->pid, sig);
  }
}

void Child::kill_stragglers() const {
  ::kill(-m_impl->pid, SIGKILL);
}

asio::awaitable<std::optional<ExitStatus>> Child::wait_for(std::chrono::milliseconds timeout) {
  auto impl = m_impl;
  if (impl->try_reap()) {
    co_return impl->status;
  }
  // Sleep until the watcher reaps the child (it cancels our timer) or the deadline passes.
  auto timer = std::make_shared<asio::steady_timer>(impl->ex);
  timer->expires_after(timeout);
  impl->waiters.push_back(timer);
  co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  impl->try_reap();
  co_return impl->status;
}

asio::awaitable<ExitStatus> Child::stop(std::chrono::milliseconds grace) {
  auto impl = m_impl;
  if (!impl->try_reap()) {
    ::kill(-impl->pid, SIGTERM);
    ::kill(-impl->pid, SIGCONT); // a stopped process must see the SIGTERM
    if (!co_await wait_for(grace)) {
      impl->logger->warn("{} (pid {}) did not stop within {} ms: SIGKILL", impl->name, impl->pid,
                         grace.count());
      ::kill(-impl->pid, SIGKILL);
      co_await wait_for(std::chrono::seconds(10));
    }
  }
  if (!impl->status && !impl->reap_blocking()) { // unkillable (uninterruptible sleep)
    impl->status = ExitStatus{0, SIGKILL};
  }
  co_return *impl->status;
}

std::string Child::output_tail_text() const {
  std::string out;
  for (const auto& line : m_impl->tail) {
    out += "\n    " + line;
  }
  return out;
}

asio::awaitable<void> sleep_for(asio::any_io_executor ex, std::chrono::steady_clock::duration d) {
  asio::steady_timer t(ex, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

std::vector<std::string> Child::output_tail() const {
  return {m_impl->tail.begin(), m_impl->tail.end()};
}

} // namespace pss::process

// A child process in its own session and process group, watched by a coroutine:
// argv vectors only (never a shell), output captured line by line (logged, last lines kept
// for error messages), exit noticed through a pidfd, and a stop that escalates
// SIGTERM (+SIGCONT) → SIGKILL to the whole group. The launch is our own fork/exec: nothing
// between the two touches the io_context or allocates (see child.cpp).
#pragma once

#include "process/limits.hpp"
#include "util/error.hpp"
#include "util/posix.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pss::process {

struct SpawnSpec {
  std::vector<std::string> argv; // argv[0]: absolute path, or a name looked up on $PATH
  // Full environment of the child; nullopt inherits ours.
  std::optional<std::map<std::string, std::string>> env;
  std::filesystem::path cwd;   // empty: inherit
  std::string name;            // for logs: "clamd"
  std::size_t tail_lines = 30; // output lines kept for error messages
  // Keep stdout apart, in memory, for a parser (stderr alone goes to the log and the tail).
  bool capture_stdout = false;
  std::size_t max_stdout = 16 * 1024 * 1024; // beyond this, output is dropped and flagged
  // ...and the group gets SIGKILL at once: the answer is lost anyway, so do not wait for a
  // scanner that prints gigabytes to finish.
  bool kill_on_overflow = false;
  ResourceLimits limits;         // setrlimit in the child before exec
  std::optional<unsigned> umask; // e.g. 077: the child's files are private
  // A channel to the child over its stdin and stdout (a JSON-RPC server on stdio): the
  // caller takes both ends with take_stdin()/take_stdout_pipe(); stderr alone is logged.
  bool stdio_pipes = false;
  // Not empty: the child may create, write, truncate, remove or rename files only beneath
  // these folders (process/landlock.hpp); spawn() fails when the kernel cannot enforce it.
  std::vector<std::filesystem::path> write_only_beneath;
  // Called on the executor with each logged output line (CR/LF stripped): readiness lines.
  std::function<void(const std::string&)> on_line;
};

// What a captured stdout held when the child exited.
struct CapturedOutput {
  std::string bytes;
  bool truncated = false; // the child printed more than max_stdout
};

struct ExitStatus {
  int code = 0;   // exit code when exited normally
  int signal = 0; // terminating signal, 0 if exited normally
  // CPU time (user + system) of the child and the children it reaped, from wait4.
  std::chrono::microseconds cpu_time{0};
  bool success() const { return signal == 0 && code == 0; }
  // "exited with status 1", "killed by signal 9 (SIGKILL)"
  std::string describe() const;
};

class Child {
public:
  // Starts the child; Error names the program when it cannot be found or executed (or a
  // limit, the cwd or the session could not be set up in the child: it then exits 127).
  static Result<std::unique_ptr<Child>> spawn(boost::asio::any_io_executor ex, SpawnSpec spec);
  // A child still running is killed (SIGKILL to its group) and reaped: never a zombie.
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  int pid() const;
  bool running() const;
  std::optional<ExitStatus> exit_status() const;

  // Waits until the child exits, or until `timeout`; nullopt on timeout.
  boost::asio::awaitable<std::optional<ExitStatus>> wait_for(std::chrono::milliseconds timeout);
  // SIGTERM+SIGCONT to the group, then SIGKILL after `grace`; always returns once reaped.
  boost::asio::awaitable<ExitStatus> stop(std::chrono::milliseconds grace);
  // Sends a signal to the whole process group (no-op once reaped).
  void signal_group(int sig) const;
  // SIGKILL to whatever is left in the group after the leader exited (a scanner's helper
  // that outlived it). Safe: the kernel does not reuse a pid while its group has members.
  void kill_stragglers() const;

  // The last lines the child printed (stdout and stderr merged, or stderr alone when stdout
  // is captured), oldest first.
  std::vector<std::string> output_tail() const;
  // The same, one indented line each, to append to an error message ("...; its output:").
  std::string output_tail_text() const;
  // The captured stdout, once the child has exited: what was read, plus what is still in the
  // pipe, in order. Never waits for end-of-file: a grandchild (Wine's helpers) may hold the
  // pipe open.
  boost::asio::awaitable<CapturedOutput> take_stdout();
  // With SpawnSpec::stdio_pipes: our ends of the child's stdin and stdout (once each).
  UniqueFd take_stdin();
  UniqueFd take_stdout_pipe();

  struct Impl;

private:
  explicit Child(std::shared_ptr<Impl> impl) : m_impl(std::move(impl)) {}
  std::shared_ptr<Impl> m_impl;
};

// Waits `d` on the executor (a poll interval, a back-off); never throws.
boost::asio::awaitable<void> sleep_for(boost::asio::any_io_executor ex,
                                       std::chrono::steady_clock::duration d);

// Looks a program up like execvp would: names with a '/' are taken as they are.
std::optional<std::filesystem::path> find_program(const std::string& name);

} // namespace pss::process

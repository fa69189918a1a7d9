// A child process in its own session and process group, watched by a coroutine:
// argv vectors only (never a shell), output captured line by line (logged, last lines kept
// for error messages), exit noticed through a pidfd, and a stop that escalates
// SIGTERM (+SIGCONT) → SIGKILL to the whole group. Boost.Process stays in child.cpp.
#pragma once

#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <filesystem>
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
};

struct ExitStatus {
  int code = 0;   // exit code when exited normally
  int signal = 0; // terminating signal, 0 if exited normally
  bool success() const { return signal == 0 && code == 0; }
  // "exited with status 1", "killed by signal 9 (SIGKILL)"
  std::string describe() const;
};

class Child {
public:
  // Starts the child; Error names the program when it cannot be found or executed.
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

  // The last lines the child printed (stdout and stderr merged), oldest first.
  std::vector<std::string> output_tail() const;

  struct Impl;

private:
  explicit Child(std::shared_ptr<Impl> impl) : m_impl(std::move(impl)) {}
  std::shared_ptr<Impl> m_impl;
};

// Looks a program up like execvp would: names with a '/' are taken as they are.
std::optional<std::filesystem::path> find_program(const std::string& name);

} // namespace pss::process

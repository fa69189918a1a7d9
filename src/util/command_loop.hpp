// The skeleton every command that runs an event loop shares: one io_context, the first
// SIGINT/SIGTERM handed to the command once, a bound on how long unwinding may then take,
// and the main coroutine's exception rethrown to the one place that reports it (main).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace pss {

class CommandLoop {
public:
  CommandLoop();
  ~CommandLoop();
  CommandLoop(const CommandLoop&) = delete;
  CommandLoop& operator=(const CommandLoop&) = delete;

  boost::asio::any_io_executor executor();
  // `handler(signal)` runs on the loop at the first SIGINT or SIGTERM (later ones are
  // ignored: the command is already stopping).
  void on_signal(std::function<void(int)> handler);
  // `handler(false)` runs on the loop at every SIGHUP (a reload) and, when `every` is not
  // zero, `handler(true)` at that interval (a scheduled update); one at a time: one that comes
  // while another runs is remembered once and runs next.
  void on_reload(std::function<boost::asio::awaitable<void>(bool scheduled)> handler,
                 std::chrono::seconds every = std::chrono::seconds(0));
  // After a signal: runs `stopping` (what hastens the end: stopping the engines), then,
  // should the main coroutine not end within `limit`, logs `why` and exits at once with
  // `status`.
  void give_up_after(boost::asio::awaitable<void> stopping, std::chrono::seconds limit, int status,
                     std::string why);
  // Runs `main` to its end (and every handler it left); rethrows its exception.
  void run(boost::asio::awaitable<void> main);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace pss

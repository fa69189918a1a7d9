// The service manager's notify protocol (sd_notify(3)): one datagram per state change
// ("READY=1", "STATUS=...", "RELOADING=1", "STOPPING=1", "WATCHDOG=1") to the socket named by
// $NOTIFY_SOCKET. Written here (a few lines) rather than linking libsystemd. Without
// $NOTIFY_SOCKET every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pss {

class ServiceNotifier {
public:
  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, then removes them from the
  // environment: the engines we start are not the service and must not speak for it.
  static ServiceNotifier from_environment();

  bool enabled() const { return !m_socket.empty(); }
  // How often to send WATCHDOG=1 (half the service manager's WatchdogSec), if it asked.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return m_watchdog; }

  // Sends `state` (lines "KEY=value"); false if it could not be sent (logged once).
  bool notify(std::string_view state) const;
  bool ready(std::string_view status) const;
  bool reloading() const; // with MONOTONIC_USEC, as Type=notify-reload requires
  bool stopping() const;
  bool status(std::string_view status) const;
  bool watchdog() const;

private:
  std::string m_socket; // a path, or "@name" for an abstract socket
  std::optional<std::chrono::microseconds> m_watchdog;
  mutable bool m_warned = false;
};

} // namespace pss

#include "util/service_notify.hpp"

#include "util/log.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace pss {

namespace {

std::string env_take(const char* name) {
  const char* v = std::getenv(name);
  std::string out = v != nullptr ? v : "";
  ::unsetenv(name);
  return out;
}

std::optional<unsigned long long> number(const std::string& s) {
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

} // namespace

ServiceNotifier ServiceNotifier::from_environment() {
  ServiceNotifier n;
  n.m_socket = env_take("NOTIFY_SOCKET");
  auto usec = number(env_take("WATCHDOG_USEC"));
  auto pid = env_take("WATCHDOG_PID");
  // WATCHDOG_PID, when set, says which process the watchdog is for (not a child of ours).
  bool ours = pid.empty() || number(pid) == static_cast<unsigned long long>(::getpid());
  if (usec && *usec > 0 && ours) {
    n.m_watchdog = std::chrono::microseconds(static_cast<long long>(*usec / 2));
  }
  if (n.m_socket.size() < 2 || (n.m_socket[0] != '/' && n.m_socket[0] != '@')) {
    n.m_socket.clear(); // unset, or not a socket name sd_notify(3) accepts
  }
  return n;
}

bool ServiceNotifier::notify(std::string_view state) const {
  if (m_socket.empty()) {
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (m_socket.size() >= sizeof(addr.sun_path)) {
    return false;
  }
  std::memcpy(addr.sun_path, m_socket.data(), m_socket.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + m_socket.size();
  if (m_socket[0] == '@') {
    addr.sun_path[0] = '\0'; // abstract namespace: no terminating NUL counted
  } else {
    len += 1;
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool sent = false;
  int err = errno;
  if (fd >= 0) {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr),
                    len) == static_cast<ssize_t>(state.size());
    err = errno;
    ::close(fd);
  }
  if (!sent && !m_warned) {
    m_warned = true;
    log::get("notify")->warn("cannot notify the service manager at {}: {}", m_socket,
                             std::strerror(err));
  }
  return sent;
}

bool ServiceNotifier::ready(std::string_view status) const {
  return notify("READY=1\nSTATUS=" + std::string(status));
}

bool ServiceNotifier::reloading() const {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
              static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  return notify("RELOADING=1\nSTATUS=reloading the engines' definitions\nMONOTONIC_USEC=" +
                std::to_string(usec));
}

bool ServiceNotifier::stopping() const {
  return notify("STOPPING=1\nSTATUS=stopping: finishing the work in flight");
}

bool ServiceNotifier::status(std::string_view status) const {
  return notify("STATUS=" + std::string(status));
}

bool ServiceNotifier::watchdog() const {
  return notify("WATCHDOG=1");
}

} // namespace pss

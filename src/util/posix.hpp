// Small RAII and error helpers around POSIX calls.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <utility>

namespace pss {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset(std::exchange(o.m_fd, -1));
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return m_fd; }
  int release() { return std::exchange(m_fd, -1); }
  void reset(int fd = -1);
  explicit operator bool() const { return m_fd >= 0; }

private:
  int m_fd = -1;
};

// "cannot open '/x': No such file or directory" from the current errno.
Error errno_error(std::string_view what, const std::filesystem::path& path);
Error errno_error(std::string_view what);

// Quote a path or name for messages so spaces, newlines and control bytes stay visible.
std::string quote(std::string_view s);

} // namespace pss

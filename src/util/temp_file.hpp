// Private temporary files: 0600 files inside a 0700 directory, removed by RAII (also on error).
#pragma once

#include "util/error.hpp"
#include "util/posix.hpp"

#include <filesystem>
#include <memory>
#include <string_view>

namespace pss {

// The directory temporary files go under: $TMPPREFIX, else $TMPDIR, else /tmp.
std::filesystem::path temp_base_dir();

// Removes `path` and everything below it, never following symlinks; directories made
// unwritable or unreadable inside it are opened up (chmod 0700) first. Best effort.
void remove_tree(const std::filesystem::path& path);

// A private directory (mode 0700) removed recursively when destroyed.
class TempDir {
public:
  // Creates `<base>/<prefix>XXXXXX`; Error if base is missing or not writable.
  static Result<TempDir> create(const std::filesystem::path& base, std::string_view prefix);
  TempDir(TempDir&&) noexcept;
  TempDir& operator=(TempDir&&) noexcept;
  ~TempDir();

  const std::filesystem::path& path() const { return m_path; }

private:
  explicit TempDir(std::filesystem::path p) : m_path(std::move(p)) {}
  std::filesystem::path m_path;
};

// A file (mode 0600) created with mkstemp, unlinked when destroyed. Holds its fd open.
class TempFile {
public:
  static Result<TempFile> create(const std::filesystem::path& dir, std::string_view prefix);
  TempFile(TempFile&&) noexcept;
  TempFile& operator=(TempFile&&) noexcept;
  ~TempFile();

  const std::filesystem::path& path() const { return m_path; }
  int fd() const { return m_fd.get(); }
  // Writes all bytes; Error on a short write (disk full, ...).
  Result<void> write(std::string_view data);
  void close() { m_fd.reset(); }

private:
  TempFile(std::filesystem::path p, UniqueFd fd) : m_path(std::move(p)), m_fd(std::move(fd)) {}
  std::filesystem::path m_path;
  UniqueFd m_fd;
};

} // namespace pss

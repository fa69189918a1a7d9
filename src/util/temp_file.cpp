#include "util/temp_file.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace pss {

namespace fs = std::filesystem;

fs::path temp_base_dir() {
  for (const char* var : {"TMPPREFIX", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') {
      return fs::path(v);
    }
  }
  return fs::path("/tmp");
}

Result<TempDir> TempDir::create(const fs::path& base, std::string_view prefix) {
  std::string templ = (base / (std::string(prefix) + "XXXXXX")).native();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return errno_error("cannot create a temporary directory in", base);
  }
  return TempDir(fs::path(buf.data()));
}

TempDir::TempDir(TempDir&& o) noexcept : m_path(std::exchange(o.m_path, {})) {}
TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    TempDir old(std::move(*this)); // removes what we held, at the end of this scope
    m_path = std::exchange(o.m_path, {});
  }
  return *this;
}
TempDir::~TempDir() {
  if (!m_path.empty()) {
    remove_tree(m_path);
  }
}

namespace {

// chmod 0700 on `dir` and the directories below it (symlinks are not followed).
void open_up(const fs::path& dir, int depth) {
  if (depth > 256) { // a pathological tree: what is left stays
    return;
  }
  ::chmod(dir.c_str(), 0700);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->symlink_status(type_ec).type() == fs::file_type::directory) {
      open_up(it->path(), depth + 1);
    }
  }
}

} // namespace

void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec && fs::symlink_status(path, ec).type() == fs::file_type::directory) {
    open_up(path, 0); // a scanner made a directory read-only (root does not need this)
    fs::remove_all(path, ec);
  }
}

Result<TempFile> TempFile::create(const fs::path& dir, std::string_view prefix) {
  std::string templ = (dir / (std::string(prefix) + "XXXXXX")).native();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC); // mkstemp creates with mode 0600
  if (fd < 0) {
    return errno_error("cannot create a temporary file in", dir);
  }
  return TempFile(fs::path(buf.data()), UniqueFd(fd));
}

TempFile::TempFile(TempFile&& o) noexcept
    : m_path(std::exchange(o.m_path, {})), m_fd(std::move(o.m_fd)) {}
TempFile& TempFile::operator=(TempFile&& o) noexcept {
  if (this != &o) {
    TempFile old(std::move(*this)); // unlinks what we held, at the end of this scope
    m_path = std::exchange(o.m_path, {});
    m_fd = std::move(o.m_fd);
  }
  return *this;
}
TempFile::~TempFile() {
  if (!m_path.empty()) {
    ::unlink(m_path.c_str());
  }
}

Result<void> TempFile::write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(m_fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_error("cannot write", m_path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

} // namespace pss

#include "process/landlock.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Debian 12's headers (Linux 6.1) stop at ABI 2; the kernel may know more.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

namespace pss::process {

namespace {

// The write-like rights of each ABI version: v1 has the base set, v2 adds REFER (renames and
// links across folders), v3 TRUNCATE.
__u64 write_rights(long abi) {
  __u64 rights = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                 LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                 LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                 LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) {
    rights |= LANDLOCK_ACCESS_FS_REFER;
  }
  if (abi >= 3) {
    rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
  }
  return rights;
}

} // namespace

Result<UniqueFd> write_ruleset(const std::vector<std::filesystem::path>& dirs) {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) {
    return make_error(std::string("this kernel cannot confine a program's writes (Landlock: ") +
                      std::strerror(errno) + ")");
  }
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = write_rights(abi);
  UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
  if (!ruleset) {
    return errno_error("cannot create a Landlock ruleset");
  }
  for (const auto& dir : dirs) {
    UniqueFd fd(::open(dir.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) {
      return errno_error("cannot open a folder to allow writes in", dir);
    }
    // A file (/dev/null) takes only the rights of a file.
    std::error_code ec;
    bool folder = std::filesystem::is_directory(dir, ec);
    landlock_path_beneath_attr rule{};
    rule.allowed_access = folder ? attr.handled_access_fs
                                 : attr.handled_access_fs & (LANDLOCK_ACCESS_FS_WRITE_FILE |
                                                             LANDLOCK_ACCESS_FS_TRUNCATE);
    rule.parent_fd = fd.get();
    if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &rule, 0) !=
        0) {
      return errno_error("cannot allow writes in", dir);
    }
  }
  return ruleset;
}

int restrict_self(int ruleset_fd) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return -1;
  }
  return static_cast<int>(::syscall(SYS_landlock_restrict_self, ruleset_fd, 0));
}

} // namespace pss::process

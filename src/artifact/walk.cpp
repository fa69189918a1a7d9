#include "artifact/walk.hpp"

#include "artifact/uri.hpp"

#include <algorithm>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>

namespace pss::artifact {

namespace {

namespace fs = std::filesystem;

// Emits the files under `dir`, entries sorted byte-wise at each level. Subdirectories are
// recursed only when they are real directories (symlink_status), so symlinks cannot loop.
// Entries that are neither directories nor symlinks to directories are emitted, whatever
// their type: fetch reports FIFOs, sockets and devices per input.
void walk_dir(const fs::path& dir, std::vector<std::string>& out, std::vector<WalkError>& errors) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    errors.push_back({dir.native(), "cannot read directory: " + ec.message()});
    return;
  }
  std::vector<fs::directory_entry> entries;
  for (const fs::directory_iterator end; it != end; it.increment(ec)) {
    entries.push_back(*it);
  }
  if (ec) { // keep what was read before the error
    errors.push_back({dir.native(), "cannot read directory: " + ec.message()});
  }
  // std::string compares through char_traits<char>, i.e. as unsigned bytes.
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.path().filename().native() < b.path().filename().native();
  });
  for (const auto& entry : entries) {
    std::error_code sec;
    fs::file_status lst = entry.symlink_status(sec);
    if (!sec && fs::is_directory(lst)) {
      walk_dir(entry.path(), out, errors);
      continue;
    }
    if (!sec && fs::is_symlink(lst)) {
      std::error_code tec;
      if (fs::is_directory(fs::status(entry.path(), tec))) {
        continue; // symlinks to directories are not followed inside a walk
      }
    }
    out.push_back(entry.path().native());
  }
}

} // namespace

void expand_inputs(const std::vector<std::string>& inputs, std::vector<std::string>& out,
                   std::vector<WalkError>& errors) {
  for (const auto& input : inputs) {
    if (classify_input(input) != InputKind::path) {
      out.push_back(input);
      continue;
    }
    struct stat lst {};
    if (::lstat(input.c_str(), &lst) != 0) {
      out.push_back(input); // fetch reports why it cannot be read
      continue;
    }
    bool is_dir = S_ISDIR(lst.st_mode);
    if (S_ISLNK(lst.st_mode)) {
      // A symlink named on the command line is followed once, at the top level.
      struct stat st {};
      is_dir = ::stat(input.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) {
      walk_dir(fs::path(input), out, errors);
    } else {
      out.push_back(input);
    }
  }
}

} // namespace pss::artifact

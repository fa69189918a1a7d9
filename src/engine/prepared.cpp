#include "engine/prepared.hpp"

#include "util/log.hpp"
#include "util/posix.hpp"
#include "wine/nt_path.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <ctime>
#include <sys/stat.h>
#include <unistd.h>

namespace pss::engine {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// Write access back (a read-only folder cannot be emptied), then the whole tree removed.
void remove_tree(const fs::path& dir) {
  std::error_code ec;
  ::chmod(dir.c_str(), 0700);
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      ::chmod(it->path().c_str(), 0700);
    }
  }
  fs::remove_all(dir, ec);
  if (ec) {
    log::get("pssupervise")->warn("cannot remove prepared data {}: {}", dir.native(), ec.message());
  }
}

// "<pid>-<n>-<unix seconds>": unique among our processes and sortable by the eye.
std::string new_generation_name() {
  static std::atomic<int> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" +
         std::to_string(std::time(nullptr));
}

// Generations whose pssupervise is gone (it was killed before removing them).
void remove_orphans(const fs::path& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    auto name = entry.path().filename().string();
    int pid = 0;
    auto [p, err] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (err != std::errc() || p == name.data() + name.size() || *p != '-' || pid <= 0) {
      continue; // not ours
    }
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      remove_tree(entry.path());
    }
  }
}

} // namespace

PreparedData::PreparedData(fs::path dir) : m_dir(std::move(dir)) {}

PreparedData::~PreparedData() {
  remove_tree(m_dir);
}

std::map<std::string, std::string> PreparedData::placeholders() const {
  return {{"prepared", m_dir.native()}, {"nt_prepared", wine::nt_path(m_dir)}};
}

Result<void> make_read_only(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dirs{dir};
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_symlink(ec)) {
      continue;
    }
    if (it->is_directory(ec)) {
      dirs.push_back(it->path()); // after their contents
      continue;
    }
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0 ||
        ::chmod(it->path().c_str(), st.st_mode & 07555) != 0) {
      return errno_error("cannot make prepared data read-only", it->path());
    }
  }
  if (ec) {
    return make_error("cannot read prepared data " + dir.native() + ": " + ec.message());
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (::chmod(it->c_str(), 0555) != 0) {
      return errno_error("cannot make prepared data read-only", *it);
    }
  }
  return {};
}

asio::awaitable<Result<Prepared>> run_setup(asio::any_io_executor ex, const Manifest& manifest,
                                            const env::EngineEnv& env, const wine::Runtime* wine) {
  auto cache = env.get("CACHE_HOME");
  if (!cache || cache->empty()) {
    co_return make_error(manifest.name + ": setup needs " + env.prefix + "_CACHE_HOME");
  }
  fs::path root = fs::path(*cache) / "prepared";
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    co_return make_error("cannot create " + root.native() + " for " + manifest.name +
                         "'s prepared data: " + ec.message());
  }
  remove_orphans(root);
  fs::path dir = root / new_generation_name();
  if (::mkdir(dir.c_str(), 0700) != 0) {
    co_return errno_error("cannot create the prepared-data folder", dir);
  }
  // Removed with everything in it unless the setup succeeds.
  auto data = std::make_shared<PreparedData>(dir);
  auto out = co_await run_command_spec(ex, manifest, env, *manifest.setup, "setup", {}, wine,
                                       data->placeholders(), dir, /*confine_writes=*/true);
  if (!out.status || !out.status->success()) {
    std::string why = manifest.name + ": setup failed (" +
                      (out.status ? out.status->describe() : out.output) + ")";
    // Its last words: stderr's tail, else stdout's.
    std::vector<std::string> lines = out.errors;
    if (lines.empty() && out.status) {
      std::size_t start = 0;
      while (start < out.output.size()) {
        auto nl = out.output.find('\n', start);
        lines.push_back(out.output.substr(start, nl == std::string::npos ? nl : nl - start));
        start = nl == std::string::npos ? out.output.size() : nl + 1;
      }
      if (lines.size() > 10) {
        lines.erase(lines.begin(), lines.end() - 10);
      }
    }
    if (!lines.empty()) {
      why += "; its last output:";
      for (const auto& l : lines) {
        why += "\n  " + l;
      }
    }
    co_return make_error(why);
  }
  if (auto ro = make_read_only(dir); !ro) {
    co_return ro.error();
  }
  log::get(manifest.name)->info("setup prepared {}", dir.native());
  co_return Prepared(std::move(data));
}

asio::awaitable<Result<Prepared>> next_generation(asio::any_io_executor ex,
                                                  const Manifest& manifest,
                                                  const env::EngineEnv& env,
                                                  const wine::Runtime* wine, Prepared current) {
  if (!manifest.setup) {
    co_return current;
  }
  co_return co_await run_setup(ex, manifest, env, wine);
}

} // namespace pss::engine

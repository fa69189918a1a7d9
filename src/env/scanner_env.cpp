#include "env/scanner_env.hpp"

#include "util/posix.hpp"
#include "util/temp_file.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <pwd.h>
#include <unistd.h>

namespace pss::env {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_scratch_prefix = "scratch-";

// The user name of our effective uid, if the password database knows it.
std::optional<std::string> user_name() {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return std::string(found->pw_name);
  }
  return std::nullopt;
}

// The pid in "scratch-<pid>-XXXXXX"; nullopt for any other name.
std::optional<pid_t> scratch_pid(const std::string& name) {
  if (!name.starts_with(k_scratch_prefix)) {
    return std::nullopt;
  }
  const char* begin = name.data() + k_scratch_prefix.size();
  const char* end = name.data() + name.size();
  pid_t pid = 0;
  auto [p, ec] = std::from_chars(begin, end, pid);
  if (ec != std::errc() || p == begin || pid <= 0 || p == end || *p != '-' ||
      end - p != 7) { // "-" and mkdtemp's six characters
    return std::nullopt;
  }
  return pid;
}

} // namespace

std::map<std::string, std::string> scanner_environment(const EngineEnv& env,
                                                       const fs::path& scratch,
                                                       const std::vector<std::string>& pass_env,
                                                       const Getenv& getenv) {
  std::map<std::string, std::string> out;
  std::string path = k_safe_path;
  if (auto p = env.get("PATH"); p && !p->empty()) {
    path = *p + ":" + path;
  }
  out["PATH"] = path;
  out["LANG"] = "C.UTF-8";
  auto lc_all = getenv("LC_ALL");
  out["LC_ALL"] = lc_all && !lc_all->empty() ? *lc_all : "C.UTF-8";
  if (auto tz = getenv("TZ")) {
    out["TZ"] = *tz;
  }
  for (const char* k : {"HOME", "TMPDIR", "TMP", "TEMP"}) {
    out[k] = scratch.native();
  }
  if (auto user = user_name()) {
    out["USER"] = *user;
    out["LOGNAME"] = *user;
  }
  for (const auto& [k, v] : env.vars) {
    if (k.starts_with(env.prefix + "_")) {
      out[k] = v;
    }
  }
  for (const auto& name : pass_env) {
    if (auto v = getenv(name)) {
      out[name] = *v;
    }
  }
  return out;
}

Result<ScratchDir> ScratchDir::create(const fs::path& runtime_dir) {
  std::string templ =
      (runtime_dir / (std::string(k_scratch_prefix) + std::to_string(::getpid()) + "-XXXXXX"))
          .native();
  if (::mkdtemp(templ.data()) == nullptr) { // mode 0700
    return errno_error("cannot create a scratch directory in", runtime_dir);
  }
  return ScratchDir(fs::path(templ));
}

ScratchDir::ScratchDir(ScratchDir&& o) noexcept : m_path(std::exchange(o.m_path, {})) {}

ScratchDir& ScratchDir::operator=(ScratchDir&& o) noexcept {
  if (this != &o) {
    if (!m_path.empty()) {
      remove_tree(m_path);
    }
    m_path = std::exchange(o.m_path, {});
  }
  return *this;
}

ScratchDir::~ScratchDir() {
  if (!m_path.empty()) {
    remove_tree(m_path);
  }
}

std::vector<fs::path> remove_stale_scratch(const fs::path& runtime_dir) {
  std::vector<fs::path> removed;
  std::error_code ec;
  for (fs::directory_iterator it(runtime_dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto pid = scratch_pid(it->path().filename().string());
    if (!pid || *pid == ::getpid()) {
      continue;
    }
    // EPERM: it runs, as somebody else. A pid reused since leaves the directory for later.
    if (::kill(*pid, 0) == 0 || errno != ESRCH) {
      continue;
    }
    if (it->symlink_status(ec).type() != fs::file_type::directory) {
      continue;
    }
    remove_tree(it->path());
    removed.push_back(it->path());
  }
  return removed;
}

} // namespace pss::env

#include "env/scanner_env.hpp"
#include "util/temp_file.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace pss::env;

namespace {
Getenv fake_env(std::map<std::string, std::string> m) {
  return [m = std::move(m)](std::string_view n) -> std::optional<std::string> {
    auto it = m.find(std::string(n));
    if (it == m.end()) {
      return std::nullopt;
    }
    return it->second;
  };
}

// A pid that existed and is gone: a child that exited and was reaped.
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::_exit(0);
  }
  ::waitpid(pid, nullptr, 0);
  return pid;
}
} // namespace

TEST_CASE("env::scanner_environment") {
  auto ours = fake_env({{"PSS_SECRET_MARKER", "s3cr3t"},
                        {"HOME", "/root"},
                        {"PATH", "/home/u/bin:/usr/bin"},
                        {"DISPLAY", ":0"},
                        {"http_proxy", "http://proxy:3128"},
                        {"TZ", "Europe/Berlin"},
                        {"FAKE_MODE", "from-our-env"}});
  auto e = resolve_engine_env("fake", "/e/fake", {{"GREETING", "hello"}, {"PATH", "/opt/fake/bin"}},
                              ours)
               .value();
  auto env = scanner_environment(e, "/run/x/scratch-1-abcdef", {"http_proxy", "NOT_SET"}, ours);
  CHECK_FALSE(env.contains("PSS_SECRET_MARKER"));
  CHECK_FALSE(env.contains("DISPLAY"));
  CHECK_FALSE(env.contains("NOT_SET"));
  CHECK(env["PATH"] == std::string("/opt/fake/bin:") + k_safe_path);
  CHECK(env["HOME"] == "/run/x/scratch-1-abcdef");
  CHECK(env["TMPDIR"] == "/run/x/scratch-1-abcdef");
  CHECK(env["TMP"] == "/run/x/scratch-1-abcdef");
  CHECK(env["TEMP"] == "/run/x/scratch-1-abcdef");
  CHECK(env["LANG"] == "C.UTF-8");
  CHECK(env["LC_ALL"] == "C.UTF-8");
  CHECK(env["TZ"] == "Europe/Berlin");
  CHECK(env["FAKE_GREETING"] == "hello"); // the manifest's variables, resolved
  CHECK(env["FAKE_SDK_HOME"] == "/e/fake");
  CHECK_FALSE(env.contains("ENGINE_DIR"));         // template variables are not the scanner's
  CHECK(env["http_proxy"] == "http://proxy:3128"); // pass_env
  CHECK(env.contains("USER"));
}

TEST_CASE("env::ScratchDir") {
  auto base = pss::TempDir::create(fs::temp_directory_path(), "pss-scratch-test-").value();
  SUBCASE("private, named after us, removed with whatever is inside") {
    fs::path path;
    {
      auto s = ScratchDir::create(base.path()).value();
      path = s.path();
      CHECK(path.filename().string().starts_with("scratch-" + std::to_string(::getpid()) + "-"));
      struct stat st {};
      REQUIRE(::stat(path.c_str(), &st) == 0);
      CHECK((st.st_mode & 07777) == 0700);
      // What a hostile scanner leaves: nested files, a read-only directory, a symlink out.
      fs::create_directories(path / "a" / "b");
      std::ofstream(path / "a" / "b" / "f") << "x";
      ::chmod((path / "a").c_str(), 0500);
      fs::create_directory_symlink(base.path(), path / "out");
    }
    CHECK_FALSE(fs::exists(path));
    CHECK(fs::exists(base.path())); // the symlink was not followed
  }
  SUBCASE("leftovers of dead processes are removed, those of live ones kept") {
    auto dead = base.path() / ("scratch-" + std::to_string(dead_pid()) + "-Ab12Cd");
    fs::create_directories(dead / "sub");
    auto alive = base.path() / ("scratch-" + std::to_string(::getppid()) + "-Ab12Cd");
    fs::create_directory(alive);
    auto mine = ScratchDir::create(base.path()).value();
    auto other = base.path() / "clamd.sock-not-ours";
    fs::create_directory(other);
    auto removed = remove_stale_scratch(base.path());
    CHECK(removed == std::vector<fs::path>{dead});
    CHECK_FALSE(fs::exists(dead));
    CHECK(fs::exists(alive));
    CHECK(fs::exists(mine.path()));
    CHECK(fs::exists(other));
  }
}

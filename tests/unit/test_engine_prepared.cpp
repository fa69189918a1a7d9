// engine/prepared: the setup's generation folders (where they go, what the setup sees, what a
// failure says and leaves), make_read_only, and the removal of a generation and of orphans.
#include "engine/prepared.hpp"
#include "unit/fake_engine.hpp"
#include "unit/support.hpp"
#include "util/temp_file.hpp"
#include "wine/nt_path.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace pss;
using pss::test::contains;
using pss::test::error_of;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    out.push_back(e.path());
  }
  return out;
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

// Engine "fake" with its cache and runtime folders in a temp dir, and a setup of `script`
// (run by /bin/sh with {prepared} as its $1).
struct Fixture {
  TempDir tmp = TempDir::create(temp_base_dir(), "pss-prepared-test-").value();
  engine::Manifest manifest = test::fake_manifest("fake");
  env::EngineEnv env;

  explicit Fixture(const std::string& script) {
    env.engine = "fake";
    env.prefix = "FAKE";
    env.vars["FAKE_CACHE_HOME"] = (tmp.path() / "cache").native();
    env.vars["FAKE_RUNTIME_DIR"] = (tmp.path() / "run").native();
    fs::create_directories(tmp.path() / "run");
    engine::CommandSpec setup;
    setup.argv = {"/bin/sh", "-c", script, "setup", "{prepared}"};
    manifest.setup = setup;
  }

  fs::path root() const { return tmp.path() / "cache" / "prepared"; }

  Result<engine::Prepared> run() {
    asio::io_context io;
    auto fut = asio::co_spawn(io, engine::run_setup(io.get_executor(), manifest, env, nullptr),
                              asio::use_future);
    io.run();
    return fut.get();
  }
};

} // namespace

TEST_CASE("engine::make_read_only") {
  auto tmp = TempDir::create(temp_base_dir(), "pss-prepared-test-").value();
  const fs::path dir = tmp.path() / "gen";
  fs::create_directories(dir / "sub" / "deeper");
  std::ofstream(dir / "rules.yar") << "rule x {}";
  std::ofstream(dir / "sub" / "db.bin") << "db";
  std::ofstream(dir / "sub" / "deeper" / "tool") << "#!/bin/sh\n";
  fs::permissions(dir / "rules.yar", fs::perms(0644));
  fs::permissions(dir / "sub" / "db.bin", fs::perms(0600));
  fs::permissions(dir / "sub" / "deeper" / "tool", fs::perms(0755));
  fs::create_symlink("rules.yar", dir / "link");

  SUBCASE("files lose their write bits and keep the rest; every folder becomes 0555") {
    REQUIRE(engine::make_read_only(dir));
    CHECK(mode_of(dir / "rules.yar") == 0444);
    CHECK(mode_of(dir / "sub" / "db.bin") == 0400);
    CHECK(mode_of(dir / "sub" / "deeper" / "tool") == 0555);
    CHECK(mode_of(dir) == 0555);
    CHECK(mode_of(dir / "sub") == 0555);
    CHECK(mode_of(dir / "sub" / "deeper") == 0555);
    CHECK(fs::is_symlink(dir / "link")); // left as it is
    CHECK(read_file(dir / "link") == "rule x {}");
  }
  SUBCASE("a folder that does not exist is an error naming it") {
    auto r = engine::make_read_only(tmp.path() / "missing");
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, (tmp.path() / "missing").native()));
  }
  // The TempDir still removes the read-only tree (util::remove_tree opens it up).
}

TEST_CASE("engine::PreparedData") {
  auto tmp = TempDir::create(temp_base_dir(), "pss-prepared-test-").value();
  const fs::path dir = tmp.path() / "gen";
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "db") << "db";

  SUBCASE("{prepared} and {nt_prepared} name its folder") {
    engine::PreparedData data(dir);
    CHECK(data.dir() == dir);
    auto p = data.placeholders();
    CHECK(p["prepared"] == dir.native());
    CHECK(p["nt_prepared"] == wine::nt_path(dir));
  }
  SUBCASE("removed with its contents when the last holder lets go, even when read-only") {
    REQUIRE(engine::make_read_only(dir));
    {
      auto data = std::make_shared<const engine::PreparedData>(dir);
      engine::Prepared held_by_a_scan = data;
      data.reset();
      CHECK(fs::exists(dir / "sub" / "db")); // a scan still holds it
    }
    CHECK_FALSE(fs::exists(dir));
  }
}

TEST_CASE("engine::run_setup") {
  SUBCASE("runs in a new folder under ${NAME_CACHE_HOME}/prepared, named <pid>-<n>-<time>, "
          "with {prepared} in its argv and as its cwd; the result is read-only") {
    Fixture f(
        R"(echo compiled > "$1/rules.bin" && mkdir sub && echo db > sub/main.db && pwd > cwd)");
    auto p = f.run();
    REQUIRE_MESSAGE(p, error_of(p));
    const fs::path dir = (*p)->dir();
    CHECK(dir.parent_path() == f.root());
    const std::string name = dir.filename().string();
    CAPTURE(name);
    CHECK(name.starts_with(std::to_string(::getpid()) + "-"));
    const auto first = name.find('-');
    const auto second = name.find('-', first + 1);
    REQUIRE(second != std::string::npos);
    const std::string seconds = name.substr(second + 1);
    CHECK_FALSE(seconds.empty());
    CHECK(seconds.find_first_not_of("0123456789") == std::string::npos);

    CHECK(read_file(dir / "rules.bin") == "compiled\n");
    CHECK(read_file(dir / "sub" / "main.db") == "db\n");
    CHECK(read_file(dir / "cwd") == dir.native() + "\n");
    CHECK(mode_of(dir) == 0555);
    CHECK(mode_of(dir / "sub") == 0555);
    CHECK((mode_of(dir / "rules.bin") & 0222) == 0);
    CHECK((mode_of(dir / "sub" / "main.db") & 0222) == 0);

    p->reset(); // the last holder
    CHECK_FALSE(fs::exists(dir));
  }
  SUBCASE("each run is a new generation; an earlier one stays while it is held") {
    Fixture f(R"(echo x > "$1/f")");
    auto a = f.run();
    auto b = f.run();
    REQUIRE_MESSAGE(a, error_of(a));
    REQUIRE_MESSAGE(b, error_of(b));
    CHECK((*a)->dir() != (*b)->dir());
    CHECK(fs::exists((*a)->dir() / "f"));
    CHECK(fs::exists((*b)->dir() / "f"));
  }
  SUBCASE("a failing setup: its status and last stderr lines, and no folder left") {
    Fixture f(R"(echo started > "$1/partial"; echo "rules.yar:3: syntax error" >&2; exit 3)");
    auto p = f.run();
    REQUIRE_FALSE(p);
    const auto& why = p.error().message;
    CAPTURE(why);
    CHECK(contains(why, "fake: setup failed (exited with status 3)"));
    CHECK(contains(why, "rules.yar:3: syntax error"));
    CHECK(entries(f.root()).empty());
  }
  SUBCASE("a failing setup that writes only to stdout: its last 10 stdout lines") {
    Fixture f(R"(for i in $(seq 1 30); do echo "step $i"; done; exit 1)");
    auto p = f.run();
    REQUIRE_FALSE(p);
    const auto& why = p.error().message;
    CAPTURE(why);
    CHECK(contains(why, "setup failed (exited with status 1)"));
    CHECK(contains(why, "step 30"));
    CHECK(contains(why, "step 21"));
    CHECK_FALSE(contains(why, "step 20\n"));
    CHECK(entries(f.root()).empty());
  }
  SUBCASE("a setup that outlives its timeout fails and leaves no folder") {
    Fixture f(R"(echo x > "$1/partial"; exec sleep 60)");
    f.manifest.setup->timeout = std::chrono::milliseconds(200);
    auto p = f.run();
    REQUIRE_FALSE(p);
    CAPTURE(p.error().message);
    CHECK(contains(p.error().message, "fake: setup failed (setup did not finish within"));
    CHECK(entries(f.root()).empty());
  }
  SUBCASE("without ${NAME_CACHE_HOME}: an error naming the variable") {
    Fixture f("true");
    f.env.vars.erase("FAKE_CACHE_HOME");
    auto p = f.run();
    REQUIRE_FALSE(p);
    CHECK(contains(p.error().message, "FAKE_CACHE_HOME"));
  }
  SUBCASE("folders of a pssupervise that is gone are removed; others are kept") {
    Fixture f(R"(echo x > "$1/f")");
    fs::create_directories(f.root());
    const fs::path orphan = f.root() / (std::to_string(dead_pid()) + "-1-1700000000");
    const fs::path living = f.root() / "1-1-1700000000"; // pid 1 always exists
    const fs::path ours = f.root() / (std::to_string(::getpid()) + "-999-1700000000");
    const fs::path other = f.root() / "not-a-generation";
    for (const auto& d : {orphan, living, ours, other}) {
      fs::create_directories(d / "sub");
      std::ofstream(d / "sub" / "db") << "db";
    }
    REQUIRE(engine::make_read_only(orphan)); // as a successful setup left it
    auto p = f.run();
    REQUIRE_MESSAGE(p, error_of(p));
    CHECK_FALSE(fs::exists(orphan));
    CHECK(fs::exists(living / "sub" / "db"));
    CHECK(fs::exists(ours / "sub" / "db"));
    CHECK(fs::exists(other / "sub" / "db"));
    CHECK(fs::exists((*p)->dir()));
  }
}

TEST_CASE("engine::run_setup: a native setup may write only in its folder") {
  Fixture f("");
  const fs::path outside = f.tmp.path() / "outside";
  f.manifest.setup->argv = {"/bin/sh", "-c",         "echo x > \"$1/inside\" && echo x > \"$2\"",
                            "setup",   "{prepared}", outside.native()};
  auto p = f.run();
  REQUIRE_FALSE(p);
  CAPTURE(p.error().message);
  CHECK(contains(p.error().message, "setup failed (exited with status"));
  CHECK_FALSE(fs::exists(outside));
  CHECK(entries(f.root()).empty());
}

TEST_CASE("engine::next_generation") {
  Fixture f(R"(echo x > "$1/f")");
  auto next = [&f](engine::Prepared current) {
    asio::io_context io;
    auto fut = asio::co_spawn(
        io, engine::next_generation(io.get_executor(), f.manifest, f.env, nullptr, current),
        asio::use_future);
    io.run();
    return fut.get();
  };
  auto first = f.run();
  REQUIRE_MESSAGE(first, error_of(first));

  SUBCASE("a new generation from the setup; the current one stays for its holders") {
    auto second = next(*first);
    REQUIRE_MESSAGE(second, error_of(second));
    CHECK((*second)->dir() != (*first)->dir());
    CHECK(fs::exists((*second)->dir() / "f"));
    CHECK(fs::exists((*first)->dir() / "f"));
  }
  SUBCASE("a failing setup: an error, and the current generation untouched") {
    f.manifest.setup->argv = {"/bin/sh", "-c", "exit 2"};
    auto second = next(*first);
    REQUIRE_FALSE(second);
    CHECK(contains(second.error().message, "setup failed (exited with status 2)"));
    CHECK(fs::exists((*first)->dir() / "f"));
  }
  SUBCASE("without a setup: the current generation") {
    f.manifest.setup.reset();
    auto same = next(*first);
    REQUIRE_MESSAGE(same, error_of(same));
    CHECK(*same == *first);
  }
}

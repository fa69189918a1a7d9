// The Service driver with real (tiny, /bin/sh) processes: readiness by line and by probe,
// restart after a death, giving up, start timeout, graceful stop.
#include "supervisor/service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace pss;
using namespace pss::supervisor;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

ServiceSpec sh_service(std::string script) {
  ServiceSpec s;
  s.name = "test-service";
  s.program = "sh";
  s.command = [script]() -> Result<process::SpawnSpec> {
    process::SpawnSpec p;
    p.argv = {"/bin/sh", "-c", script};
    return p;
  };
  // Generous: they only bound a hung test (a loaded machine under ASan is slow to start and
  // stop even /bin/sh). The tests that need a short timeout set their own.
  s.start_timeout = 120s;
  s.stop_timeout = 60s;
  s.restart.min_delay = 10ms;
  s.restart.max_delay = 40ms;
  return s;
}

// Runs `body` as a coroutine on a fresh io_context until it finishes.
template <typename F>
void run(F body) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, body(io.get_executor()), asio::use_future);
  io.run();
  fut.get();
}

bool alive(int pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

// Alive and not a zombie: an orphan waits for whoever adopted it to reap it.
bool running(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (pid <= 0 || !std::getline(stat, line)) {
    return false;
  }
  auto close = line.rfind(')'); // the name may hold spaces and parentheses
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// Polls `done` until it holds: false only after `bound`, which just stops a hung test.
template <typename Pred>
asio::awaitable<bool> eventually(asio::any_io_executor ex, Pred done,
                                 std::chrono::milliseconds bound = 120s) {
  const auto deadline = Clock::now() + bound;
  while (!done()) {
    if (Clock::now() >= deadline) {
      co_return false;
    }
    co_await process::sleep_for(ex, 5ms);
  }
  co_return true;
}

// A fresh directory for a test's flag files, removed at the end of the scope.
struct FlagDir {
  FlagDir() {
    char dir[] = "/tmp/pss-svc-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    path = dir;
  }
  FlagDir(const FlagDir&) = delete;
  FlagDir& operator=(const FlagDir&) = delete;
  ~FlagDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

} // namespace

TEST_CASE("ready when its output line appears; stopped with SIGTERM") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    FlagDir flags;
    const std::string printed = flags.file("printed");
    // Another line first, then a pause; the flag file is made just before the ready line.
    auto spec = sh_service("echo 'server initialization started'; sleep 0.2; touch " + printed +
                           "; echo 'server initialization completed'; exec sleep 100");
    spec.ready_line = "initialization completed";
    Service svc(ex, spec);
    auto r = co_await svc.start();
    REQUIRE(r);
    CHECK(std::filesystem::exists(printed)); // ready came with the line, not before it
    auto st = svc.status();
    CHECK(st.state == State::ready);
    CHECK(alive(st.pid));
    co_await svc.stop();
    CHECK(svc.status().state == State::down);
    CHECK_FALSE(alive(st.pid));
  });
}

TEST_CASE("a probe decides readiness; it is retried until it passes") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto spec = sh_service("exec sleep 100");
    auto tries = std::make_shared<int>(0);
    spec.ready_probe = [tries](Clock::time_point) -> asio::awaitable<Result<void>> {
      if (++*tries < 3) {
        co_return make_error("not yet");
      }
      co_return Result<void>{};
    };
    Service svc(ex, spec);
    auto r = co_await svc.start();
    REQUIRE(r);
    CHECK(*tries == 3);
    co_await svc.stop();
  });
}

TEST_CASE("a process that dies is restarted and acquire() waits for it") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto spec = sh_service("echo up; exec sleep 100");
    spec.ready_line = "^up$";
    Service svc(ex, spec);
    REQUIRE(co_await svc.start());
    int first = svc.status().pid;
    int gen = svc.status().generation;
    ::kill(first, SIGKILL);
    // Its death is seen asynchronously.
    REQUIRE(co_await eventually(ex, [&] { return svc.status().state != State::ready; }));
    auto g = co_await svc.acquire(Clock::now() + 120s);
    REQUIRE(g);
    CHECK(*g == gen + 1);
    auto st = svc.status();
    CHECK(st.restarts == 1);
    CHECK(st.pid != first);
    CHECK(st.last_exit == "killed by signal 9 (SIGKILL)");
    co_await svc.stop();
  });
}

TEST_CASE("a server that dies takes the helpers it forked with it") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    FlagDir flags;
    const std::string helper_file = flags.file("helper.pid");
    // A helper in the server's process group (as c-icap's children), its pid in a file; it
    // would outlive the wait below.
    auto spec = sh_service("sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > " + helper_file +
                           "; echo up; exec sleep 1000");
    spec.ready_line = "^up$";
    Service svc(ex, spec);
    REQUIRE(co_await svc.start());
    int helper = 0;
    std::ifstream(helper_file) >> helper;
    REQUIRE(running(helper));
    ::kill(svc.status().pid, SIGKILL); // the server alone
    REQUIRE(co_await svc.acquire(Clock::now() + 120s));
    CHECK(co_await eventually(ex, [&] { return !running(helper); }));
    co_await svc.stop();
  });
}

TEST_CASE("report_broken kills and restarts only the generation it names") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto spec = sh_service("echo up; exec sleep 100");
    spec.ready_line = "up";
    Service svc(ex, spec);
    REQUIRE(co_await svc.start());
    int gen = svc.status().generation;
    svc.report_broken(gen - 1, "stale"); // ignored
    CHECK(svc.status().state == State::ready);
    svc.report_broken(gen, "a scan did not answer within 1 s");
    auto g = co_await svc.acquire(Clock::now() + 120s);
    REQUIRE(g);
    CHECK(*g == gen + 1);
    CHECK(svc.status().last_exit.starts_with("a scan did not answer within 1 s"));
    co_await svc.stop();
  });
}

TEST_CASE("refusing to start: failed after max_deaths, with its output in the error") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto spec = sh_service("echo 'License check failed: license expired' >&2; exit 3");
    spec.ready_line = "never";
    spec.restart.max_deaths = 3;
    Service svc(ex, spec);
    auto r = co_await svc.start();
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("died 3 times") != std::string::npos);
    CHECK(r.error().message.find("exited with status 3") != std::string::npos);
    CHECK(r.error().message.find("license expired") != std::string::npos);
    CHECK(svc.status().state == State::failed);
    auto a = co_await svc.acquire(Clock::now() + 1s);
    REQUIRE_FALSE(a);
    CHECK(a.error().message.find("engine failed") != std::string::npos);
    co_await svc.stop();
  });
}

TEST_CASE("not ready within the start timeout: an error naming the timeout") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto spec = sh_service("exec sleep 100");
    spec.ready_line = "never printed";
    spec.start_timeout = 300ms; // never printed: the start timeout always fires
    Service svc(ex, spec);
    auto r = co_await svc.start();
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("not ready within 0.3 s") != std::string::npos);
    CHECK(svc.status().pid == 0);
  });
}

TEST_CASE("graceful stop asks the engine first; SIGTERM only if that fails") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    FlagDir flags;
    std::string flag = flags.file("stop");
    // The "server" exits 0 once the flag file exists; it ignores SIGTERM.
    auto spec = sh_service("trap '' TERM; echo up; while [ ! -e " + flag +
                           " ]; do sleep 0.05; done; exit 0");
    spec.ready_line = "up";
    auto asked = std::make_shared<bool>(false);
    spec.shutdown = [flag, asked](Clock::time_point) -> asio::awaitable<Result<void>> {
      *asked = true;
      std::ofstream(flag) << "x";
      co_return Result<void>{};
    };
    Service svc(ex, spec);
    REQUIRE(co_await svc.start());
    co_await svc.stop();
    CHECK(*asked);
    CHECK(svc.status().last_exit == "exited with status 0");
  });
}

TEST_CASE("a health check that keeps failing restarts it") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto spec = sh_service("echo up; exec sleep 100");
    spec.ready_line = "up";
    spec.health_interval = 20ms;
    spec.health_failures = 2;
    auto healthy = std::make_shared<bool>(true);
    spec.health_probe = [healthy](Clock::time_point) -> asio::awaitable<Result<void>> {
      if (*healthy) {
        co_return Result<void>{};
      }
      co_return make_error("no PONG");
    };
    Service svc(ex, spec);
    REQUIRE(co_await svc.start());
    int gen = svc.status().generation;
    *healthy = false;
    // Until the failures have made it restart (however long two 20 ms checks take here).
    REQUIRE(co_await eventually(ex, [&] { return svc.status().generation > gen; }));
    *healthy = true;
    auto g = co_await svc.acquire(Clock::now() + 120s);
    REQUIRE(g);
    CHECK(*g > gen);
    CHECK(svc.status().last_exit.find("health check failed 2 times (last: no PONG)") !=
          std::string::npos);
    co_await svc.stop();
  });
}

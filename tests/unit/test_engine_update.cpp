// engine/update: which updater runs, what a failing one says, update_engine's outcome with a
// scripted reload, and the record `engines` reads back (last_update_summary).
#include "engine/update.hpp"
#include "unit/fake_engine.hpp"
#include "unit/support.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace pss;
using pss::test::contains;
using pss::test::error_of;
using pss::test::FakeEngine;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

engine::CommandSpec shell(const std::string& script) {
  engine::CommandSpec c;
  c.argv = {"/bin/sh", "-c", script};
  return c;
}

// Engine "fake" with its state and runtime folders in a temp dir; `marks` is where the test
// updaters leave their traces.
struct Fixture {
  TempDir tmp = TempDir::create(temp_base_dir(), "pss-update-test-").value();
  FakeEngine engine{"fake"};
  fs::path marks = tmp.path() / "marks";

  Fixture() {
    auto& env = engine.env();
    env.engine = "fake";
    env.prefix = "FAKE";
    env.vars["FAKE_STATE_HOME"] = (tmp.path() / "state").native();
    env.vars["FAKE_RUNTIME_DIR"] = (tmp.path() / "run").native();
    env.vars["FAKE_MARKS"] = marks.native();
    fs::create_directories(tmp.path() / "run");
    fs::create_directories(marks);
  }

  // An executable script for ${FAKE_UPDATER}.
  fs::path script(const std::string& name, const std::string& body) {
    auto p = tmp.path() / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(p, fs::perms(0755));
    return p;
  }

  Result<void> run_updater() {
    asio::io_context io;
    auto fut = asio::co_spawn(
        io, engine::run_updater(io.get_executor(), engine.manifest(), engine.env(), nullptr),
        asio::use_future);
    io.run();
    return fut.get();
  }

  engine::UpdateOutcome update(bool with_updater = true) {
    asio::io_context io;
    auto fut = asio::co_spawn(io, engine::update_engine(io.get_executor(), engine, with_updater),
                              asio::use_future);
    io.run();
    return fut.get();
  }
};

bool is_iso8601_utc(const std::string& at) {
  return std::regex_match(at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)"));
}

} // namespace

TEST_CASE("engine::has_updater") {
  Fixture f;
  CHECK_FALSE(engine::has_updater(f.engine));
  f.engine.env().vars["FAKE_UPDATER"] = "";
  CHECK_FALSE(engine::has_updater(f.engine)); // set but empty: none
  f.engine.env().vars["FAKE_UPDATER"] = "/opt/fake/update";
  CHECK(engine::has_updater(f.engine));
  f.engine.env().vars.erase("FAKE_UPDATER");
  f.engine.manifest().update = shell("true");
  CHECK(engine::has_updater(f.engine));
  CHECK(engine::has_updater(f.engine.manifest(), f.engine.env()));
}

TEST_CASE("engine::run_updater") {
  Fixture f;
  SUBCASE("the manifest's update, its ${VAR}s expanded") {
    f.engine.manifest().update = shell("echo manifest > ${FAKE_MARKS}/ran");
    auto r = f.run_updater();
    REQUIRE_MESSAGE(r, error_of(r));
    CHECK(read_file(f.marks / "ran") == "manifest\n");
  }
  SUBCASE("${NAME_UPDATER} wins over the manifest's update") {
    f.engine.manifest().update = shell("echo manifest > ${FAKE_MARKS}/ran");
    f.engine.env().vars["FAKE_UPDATER"] =
        f.script("updater", "echo from-env > \"" + (f.marks / "ran").native() + "\"").native();
    auto r = f.run_updater();
    REQUIRE_MESSAGE(r, error_of(r));
    CHECK(read_file(f.marks / "ran") == "from-env\n");
  }
  SUBCASE("a failure: its exit status and its last stderr lines") {
    f.engine.manifest().update =
        shell("echo downloading; echo 'fatal: mirror unreachable' >&2; exit 4");
    auto r = f.run_updater();
    REQUIRE_FALSE(r);
    CAPTURE(r.error().message);
    CHECK(contains(r.error().message, "the updater failed (exited with status 4)"));
    CHECK(contains(r.error().message, "fatal: mirror unreachable"));
  }
  SUBCASE("a failure written to stdout after a long log: its last lines, not its first") {
    f.engine.manifest().update = shell("for i in $(seq 1 100); do echo \"fetching part $i\"; done; "
                                       "echo 'fatal: mirror unreachable'; exit 1");
    auto r = f.run_updater();
    REQUIRE_FALSE(r);
    CAPTURE(r.error().message);
    CHECK(contains(r.error().message, "the updater failed (exited with status 1)"));
    CHECK(contains(r.error().message, "fatal: mirror unreachable"));
    CHECK(contains(r.error().message, "fetching part 100"));
    CHECK_FALSE(contains(r.error().message, "fetching part 1\n"));
  }
  SUBCASE("an updater that cannot start says why") {
    f.engine.env().vars["FAKE_UPDATER"] = (f.tmp.path() / "no-such-updater").native();
    auto r = f.run_updater();
    REQUIRE_FALSE(r);
    CAPTURE(r.error().message);
    CHECK(contains(r.error().message, "the updater failed ("));
    CHECK(contains(r.error().message, "no-such-updater"));
  }
  SUBCASE("none: an error saying how to give one") {
    auto r = f.run_updater();
    REQUIRE_FALSE(r);
    CHECK(r.error().message ==
          "fake has no updater (set FAKE_UPDATER or give the manifest an \"update\")");
  }
}

TEST_CASE("engine::update_engine") {
  Fixture f;
  f.engine.engine_versions.definitions = "27000";
  // The fake's reload takes what the updater left: the version it wrote, if any.
  bool updated_before_reload = false;
  f.engine.on_reload = [&]() -> Result<void> {
    updated_before_reload = fs::exists(f.marks / "version");
    if (updated_before_reload) {
      f.engine.engine_versions.definitions = read_file(f.marks / "version");
    }
    return {};
  };
  const fs::path record = f.tmp.path() / "state" / "last-update.json";

  SUBCASE("the updater, then the reload: ok, the versions before and after, recorded") {
    f.engine.manifest().update = shell("printf 27001 > ${FAKE_MARKS}/version");
    const auto out = f.update();
    CHECK(out.ok);
    CHECK(out.engine == "fake");
    CHECK(out.stage == "reload");
    CHECK(out.message.empty());
    CHECK(out.before == std::optional<std::string>("27000"));
    CHECK(out.after == std::optional<std::string>("27001"));
    CHECK(is_iso8601_utc(out.at));
    CHECK(f.engine.reloads == 1);
    CHECK(updated_before_reload);
    REQUIRE(fs::exists(record));
    CHECK(engine::last_update_summary(f.engine.env()) == std::optional("ok " + out.at));
  }
  SUBCASE("without running the updater: the reload alone") {
    f.engine.manifest().update = shell("printf 27001 > ${FAKE_MARKS}/version");
    const auto out = f.update(/*with_updater=*/false);
    CHECK(out.ok);
    CHECK(f.engine.reloads == 1);
    CHECK_FALSE(fs::exists(f.marks / "version"));
    CHECK(out.after == std::optional<std::string>("27000"));
  }
  SUBCASE("a failing updater: no reload; the stage, the reason, recorded on one line") {
    f.engine.manifest().update = shell("echo 'fatal: mirror unreachable' >&2; exit 4");
    const auto out = f.update();
    CHECK_FALSE(out.ok);
    CHECK(out.stage == "updater");
    CHECK(contains(out.message, "the updater failed (exited with status 4)"));
    CHECK(out.before == std::optional<std::string>("27000"));
    CHECK_FALSE(out.after);
    CHECK(f.engine.reloads == 0);
    auto summary = engine::last_update_summary(f.engine.env());
    REQUIRE(summary);
    CAPTURE(*summary);
    CHECK(summary->starts_with("failed (updater) " + out.at +
                               ": the updater failed (exited with status 4)"));
    CHECK(contains(*summary, "fatal: mirror unreachable"));
    CHECK_FALSE(contains(*summary, "\n"));
  }
  SUBCASE("a reload the engine refuses: the reload's reason; the old definitions serve on") {
    f.engine.on_reload = [] { return Result<void>(make_error("clamd refused main.cvd")); };
    const auto out = f.update(/*with_updater=*/false);
    CHECK_FALSE(out.ok);
    CHECK(out.stage == "reload");
    CHECK(out.message == "clamd refused main.cvd");
    CHECK_FALSE(out.after);
    CHECK(f.engine.versions().definitions == std::optional<std::string>("27000"));
    CHECK(engine::last_update_summary(f.engine.env()) ==
          std::optional("failed (reload) " + out.at + ": clamd refused main.cvd"));
  }
  SUBCASE("a reload that throws is an outcome, not an exception") {
    f.engine.on_reload = []() -> Result<void> { throw std::runtime_error("driver bug"); };
    const auto out = f.update(/*with_updater=*/false);
    CHECK_FALSE(out.ok);
    CHECK(out.stage == "reload");
    CHECK(out.message == "internal error: driver bug");
  }
  SUBCASE("the last outcome replaces the one before") {
    f.engine.on_reload = [] { return Result<void>(make_error("refused")); };
    f.update(false);
    f.engine.on_reload = nullptr;
    const auto out = f.update(false);
    CHECK(engine::last_update_summary(f.engine.env()) == std::optional("ok " + out.at));
  }
  SUBCASE("a long reason is cut short in the summary") {
    const std::string reason(1000, 'x');
    f.engine.on_reload = [&] { return Result<void>(make_error(reason)); };
    f.update(false);
    auto summary = engine::last_update_summary(f.engine.env());
    REQUIRE(summary);
    CHECK(summary->size() < 300);
  }
  SUBCASE("without ${NAME_STATE_HOME} nothing is recorded, and there is nothing to show") {
    f.engine.env().vars.erase("FAKE_STATE_HOME");
    CHECK(f.update(false).ok);
    CHECK_FALSE(fs::exists(record));
    CHECK_FALSE(engine::last_update_summary(f.engine.env()));
  }
}

TEST_CASE("engine::last_update_summary") {
  Fixture f;
  const fs::path record = f.tmp.path() / "state" / "last-update.json";
  SUBCASE("nothing recorded yet") {
    CHECK_FALSE(engine::last_update_summary(f.engine.env()));
  }
  SUBCASE("a record that is not JSON shows nothing") {
    fs::create_directories(record.parent_path());
    std::ofstream(record) << "{\"ok\": tr";
    CHECK_FALSE(engine::last_update_summary(f.engine.env()));
  }
}

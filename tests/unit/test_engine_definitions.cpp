#include "engine/definitions.hpp"
#include "util/temp_file.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <regex>

using namespace pss;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

struct Defs {
  TempDir dir = TempDir::create(temp_base_dir(), "pss-defs-").value();
  engine::Manifest manifest;
  env::EngineEnv env;

  Defs() {
    manifest.name = "x";
    manifest.definitions = {"${X_DATA_HOME}"};
    env.engine = "x";
    env.prefix = "X";
    env.vars["X_DATA_HOME"] = (dir.path() / "db").native();
    write(dir.path() / "db" / "a.ndb", "sig-a\n");
    write(dir.path() / "db" / "sub" / "b.hdb", "sig-b\n");
  }
  std::string digest() const { return engine::definitions_digest(manifest, env).value(); }
};

} // namespace

TEST_CASE("engine::definitions_digest: custom and 12 hex digits, the same for the same files") {
  Defs d;
  auto v = d.digest();
  CHECK(std::regex_match(v, std::regex("custom:[0-9a-f]{12}")));
  CHECK(d.digest() == v);
  Defs other; // another folder holding the same files: the same version on every host
  CHECK(other.digest() == v);
}

TEST_CASE("engine::definitions_digest changes exactly when the definitions do") {
  Defs d;
  auto before = d.digest();
  SUBCASE("a touch is no change") {
    fs::last_write_time(d.dir.path() / "db" / "a.ndb", fs::file_time_type::clock::now());
    CHECK(d.digest() == before);
  }
  SUBCASE("a byte") {
    write(d.dir.path() / "db" / "sub" / "b.hdb", "sig-B\n");
    CHECK(d.digest() != before);
  }
  SUBCASE("a name") {
    fs::rename(d.dir.path() / "db" / "a.ndb", d.dir.path() / "db" / "c.ndb");
    CHECK(d.digest() != before);
  }
  SUBCASE("a file more") {
    write(d.dir.path() / "db" / "new.ndb", "");
    CHECK(d.digest() != before);
  }
  SUBCASE("bytes moved from one file to the next") {
    write(d.dir.path() / "db" / "a.ndb", "sig-a\nsig-b");
    write(d.dir.path() / "db" / "sub" / "b.hdb", "\n");
    CHECK(d.digest() != before);
  }
}

TEST_CASE("engine::definitions_digest: a missing path is an error naming it") {
  Defs d;
  d.manifest.definitions = {"${X_DATA_HOME}/missing.ndb"};
  auto r = engine::definitions_digest(d.manifest, d.env);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("missing.ndb does not exist") != std::string::npos);
}

TEST_CASE("engine::add_definitions_digest only when the engine reports no version") {
  Defs d;
  engine::EngineVersions reported;
  reported.definitions = "27000";
  engine::add_definitions_digest(reported, d.manifest, d.env);
  CHECK(reported.definitions == "27000");
  engine::EngineVersions none;
  engine::add_definitions_digest(none, d.manifest, d.env);
  CHECK(none.definitions == d.digest());
  engine::EngineVersions no_files;
  d.manifest.definitions.clear();
  engine::add_definitions_digest(no_files, d.manifest, d.env);
  CHECK_FALSE(no_files.definitions);
}

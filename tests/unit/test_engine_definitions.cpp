#include "engine/definitions.hpp"
#include "util/sha256.hpp"
#include "util/temp_file.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

namespace {

// The digest as definitions.hpp documents it: each file's relative path, a NUL, its size, a
// NUL, its bytes, in the given order.
std::string documented_digest(const std::vector<std::pair<std::string, std::string>>& files) {
  Sha256 hash;
  for (const auto& [name, bytes] : files) {
    hash.update(name);
    hash.update(std::string_view("\0", 1));
    hash.update(std::to_string(bytes.size()));
    hash.update(std::string_view("\0", 1));
    hash.update(bytes);
  }
  return "custom:" + hash.hex_digest().substr(0, 12);
}

} // namespace

TEST_CASE("engine::definitions_digest: as documented, files in byte order of their relative "
          "path whatever order they were written in") {
  Defs d;
  const fs::path db = d.dir.path() / "db";
  // Written in reverse order, in nested folders.
  write(db / "z" / "z.ndb", "zz");
  write(db / "m.ndb", "m");
  write(db / "B.ndb", "upper");
  write(db / "a" / "b" / "deep.ndb", "deep");
  CHECK(d.digest() == documented_digest({{"B.ndb", "upper"},
                                         {"a.ndb", "sig-a\n"},
                                         {"a/b/deep.ndb", "deep"},
                                         {"m.ndb", "m"},
                                         {"sub/b.hdb", "sig-b\n"},
                                         {"z/z.ndb", "zz"}}));
  const auto v = d.digest();
  d.manifest.definitions = {"${X_DATA_HOME}/"}; // a trailing '/' names the same folder
  CHECK(d.digest() == v);
}

TEST_CASE("engine::definitions_digest: a file named directly counts by its file name") {
  Defs d;
  d.manifest.definitions = {"${X_DATA_HOME}/a.ndb"};
  CHECK(d.digest() == documented_digest({{"a.ndb", "sig-a\n"}}));
  SUBCASE("several entries, in the manifest's order") {
    d.manifest.definitions = {"${X_DATA_HOME}/sub", "${X_DATA_HOME}/a.ndb"};
    CHECK(d.digest() == documented_digest({{"b.hdb", "sig-b\n"}, {"a.ndb", "sig-a\n"}}));
  }
}

TEST_CASE("engine::definitions_digest follows a symbolic link to a folder, by the link's name") {
  // Two hosts with the same files, a linked folder kept in different places on each.
  Defs here;
  Defs there;
  write(here.dir.path() / "elsewhere" / "extra.ndb", "extra");
  write(there.dir.path() / "somewhere" / "else" / "extra.ndb", "extra");
  fs::create_directory_symlink(here.dir.path() / "elsewhere", here.dir.path() / "db" / "linked");
  fs::create_directory_symlink(there.dir.path() / "somewhere" / "else",
                               there.dir.path() / "db" / "linked");
  CHECK(here.digest() ==
        documented_digest(
            {{"a.ndb", "sig-a\n"}, {"linked/extra.ndb", "extra"}, {"sub/b.hdb", "sig-b\n"}}));
  CHECK(there.digest() == here.digest());
}

TEST_CASE("engine::definitions_digest: a variable that is not set is an error") {
  Defs d;
  d.manifest.definitions = {"${PSS_TEST_NO_SUCH_VARIABLE}/rules"};
  auto r = engine::definitions_digest(d.manifest, d.env);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("x: definitions.files: ") == 0);
  CHECK(r.error().message.find("PSS_TEST_NO_SUCH_VARIABLE") != std::string::npos);
}

TEST_CASE("engine::add_definitions_digest: says where the version comes from, and leaves it "
          "empty when the files cannot be read") {
  Defs d;
  engine::EngineVersions v;
  engine::add_definitions_digest(v, d.manifest, d.env);
  CHECK(v.definitions == d.digest());
  CHECK(v.note.find("digest") != std::string::npos);

  d.manifest.definitions = {"${X_DATA_HOME}/missing"};
  engine::EngineVersions missing;
  engine::add_definitions_digest(missing, d.manifest, d.env);
  CHECK_FALSE(missing.definitions);
  CHECK(missing.note.empty());
}

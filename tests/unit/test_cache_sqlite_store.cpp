// The SQLite result store as a host uses it: entries across reopenings and connections (two
// processes), expiry, a corrupt or foreign file set aside, writes refused by the disk.
#include "cache/sqlite_store.hpp"
#include "util/temp_file.hpp"

#include <csignal>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sqlite3.h>
#include <sys/resource.h>

namespace fs = std::filesystem;
using pss::cache::SqliteStore;
using namespace std::chrono_literals;

namespace {

struct Dir {
  fs::path path = fs::temp_directory_path() / ("pss-cache-test-" + std::to_string(::getpid()) +
                                               "-" + std::to_string(counter++));
  Dir() { fs::create_directories(path); }
  ~Dir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  static inline int counter = 0;
};

std::vector<fs::path> set_aside(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().native().find(".corrupt-") != std::string::npos) {
      out.push_back(e.path());
    }
  }
  return out;
}

} // namespace

TEST_CASE("cache::SqliteStore") {
  Dir dir;
  const fs::path db = dir.path / "sub" / "results.sqlite";

  SUBCASE("put, get, replace; kept across reopenings; seen by a second connection") {
    auto s = SqliteStore::open(db);
    REQUIRE(s.has_value());
    CHECK((*s)->where() == "sqlite:" + db.native());
    CHECK_FALSE((*s)->get("k").has_value());
    (*s)->put("k", R"({"verdict":"malicious"})", 3600s);
    auto e = (*s)->get("k"); // kept back for the next batch, and already found
    REQUIRE(e.has_value());
    (*s)->flush();
    e = (*s)->get("k");
    REQUIRE(e.has_value());
    CHECK(e->value == R"({"verdict":"malicious"})");
    CHECK(e->stored_at > 1700000000);
    auto other = SqliteStore::open(db); // another process's connection, as far as SQLite knows
    REQUIRE(other.has_value());
    REQUIRE((*other)->get("k").has_value());
    (*other)->put("k", "second", 3600s); // two writers of one key: one valid entry
    (*other)->flush();
    CHECK((*s)->get("k")->value == "second");
    s->reset();
    auto again = SqliteStore::open(db);
    REQUIRE(again.has_value());
    CHECK((*again)->get("k")->value == "second");
    CHECK(set_aside(db.parent_path()).empty());
  }

  SUBCASE("an expired entry is a miss and is purged") {
    auto s = SqliteStore::open(db);
    REQUIRE(s.has_value());
    (*s)->put("old", "x", -1s);
    (*s)->put("new", "y", 3600s);
    CHECK_FALSE((*s)->get("old").has_value());
    CHECK((*s)->purge_expired() == 1);
    CHECK((*s)->get("new").has_value());
  }

  SUBCASE("a file that is not a database is set aside and a new cache made") {
    fs::create_directories(db.parent_path());
    std::ofstream(db) << std::string(5000, 'x');
    auto s = SqliteStore::open(db);
    REQUIRE(s.has_value());
    auto aside = set_aside(db.parent_path());
    REQUIRE(aside.size() == 1);
    CHECK(fs::file_size(aside[0]) == 5000);
    (*s)->put("k", "v", 3600s);
    CHECK((*s)->get("k")->value == "v");
  }

  SUBCASE("another program's database at our path is not used") {
    fs::create_directories(db.parent_path());
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "CREATE TABLE mine(a)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
    auto s = SqliteStore::open(db);
    REQUIRE(s.has_value());
    CHECK(set_aside(db.parent_path()).size() == 1);
  }

  SUBCASE("a database corrupted while in use: set aside at the next use, scans go on") {
    auto s = SqliteStore::open(db);
    REQUIRE(s.has_value());
    for (int i = 0; i < 2000; ++i) {
      (*s)->put("key-" + std::to_string(i), std::string(200, 'v'), 3600s);
    }
    s->reset(); // checkpointed into the main file
    auto reopened = SqliteStore::open(db);
    REQUIRE(reopened.has_value());
    {
      // Garbage over every page after the first (the header stays valid).
      std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(4096);
      const std::string junk(fs::file_size(db) - 4096, '\xA5');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    for (int i = 0; i < 10; ++i) {
      (void)(*reopened)->get("key-" + std::to_string(i)); // a miss, never a throw
    }
    CHECK(set_aside(db.parent_path()).size() == 1);
    (*reopened)->put("after", "v", 3600s);
    CHECK((*reopened)->get("after")->value == "v");
  }

  SUBCASE("a full disk: writes are dropped, reads go on") {
    auto s = SqliteStore::open(db);
    REQUIRE(s.has_value());
    (*s)->put("before", "v", 3600s);
    (*s)->flush();
    // The file-size limit stands in for a full disk: a write past it fails with EFBIG
    // (SQLITE_FULL), as ENOSPC would.
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = static_cast<rlim_t>(fs::file_size(db) + 8192);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    for (int i = 0; i < 500; ++i) {
      (*s)->put("key-" + std::to_string(i), std::string(1000, 'v'), 3600s); // never throws
    }
    (*s)->flush();
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
    std::signal(SIGXFSZ, old_handler);
    CHECK_FALSE((*s)->get("key-499").has_value());
    CHECK((*s)->get("before")->value == "v");
    (*s)->put("after", "w", 3600s); // room again: stored
    (*s)->flush();
    CHECK((*s)->get("after")->value == "w");
    CHECK(set_aside(db.parent_path()).empty());
  }

  SUBCASE("a folder that cannot be created is an error naming it") {
    const fs::path file = dir.path / "a-file";
    std::ofstream(file) << "x";
    auto s = SqliteStore::open(file / "results.sqlite");
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().message.find(file.native()) != std::string::npos);
  }
}

#include "util/temp_file.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <sys/stat.h>

namespace fs = std::filesystem;

TEST_CASE("util::temp_file") {
  fs::path dir_path;
  fs::path file_path;
  {
    auto dir = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
    dir_path = dir.path();
    struct stat st {};
    REQUIRE(::stat(dir_path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    {
      auto f = pss::TempFile::create(dir.path(), "artifact-").value();
      file_path = f.path();
      REQUIRE(::stat(file_path.c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
      CHECK(f.write("abc"));
      CHECK(fs::file_size(file_path) == 3);
    }
    CHECK_FALSE(fs::exists(file_path)); // removed with the TempFile
    auto keep = pss::TempFile::create(dir.path(), "left-").value();
    (void)keep;
  }
  CHECK_FALSE(fs::exists(dir_path)); // removed recursively with the TempDir

  SUBCASE("missing base is an error naming it") {
    auto r = pss::TempDir::create("/nonexistent/pss", "x");
    REQUIRE(!r);
    CHECK(r.error().message.find("/nonexistent/pss") != std::string::npos);
  }
}

TEST_CASE("util::temp_file move assignment") {
  auto dir = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  auto a = pss::TempFile::create(dir.path(), "a-").value();
  auto b = pss::TempFile::create(dir.path(), "b-").value();
  fs::path a_path = a.path();
  fs::path b_path = b.path();
  a = std::move(b);
  CHECK_FALSE(fs::exists(a_path)); // the replaced file is removed
  CHECK(a.path() == b_path);
  CHECK(fs::exists(b_path));
  CHECK(a.write("still writable"));

  auto d1 = pss::TempDir::create(dir.path(), "d1-").value();
  auto d2 = pss::TempDir::create(dir.path(), "d2-").value();
  fs::path d1_path = d1.path();
  d1 = std::move(d2);
  CHECK_FALSE(fs::exists(d1_path));
  CHECK(fs::exists(d1.path()));
}

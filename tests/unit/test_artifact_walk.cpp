#include "artifact/walk.hpp"
#include "util/temp_file.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using pss::artifact::expand_inputs;
using pss::artifact::WalkError;

namespace {

void touch(const fs::path& p) {
  std::ofstream f(p);
  f << "x";
  REQUIRE(f.good());
}

} // namespace

TEST_CASE("artifact::walk") {
  auto work = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  const std::string root = (work.path() / "tree").native();
  fs::create_directories(root + "/b/inner");
  fs::create_directories(root + "/a");
  fs::create_directories(root + "/empty");
  touch(root + "/c.txt");
  touch(root + "/B.txt"); // byte-wise: uppercase before lowercase
  touch(root + "/a/z");
  touch(root + "/a/y");
  touch(root + "/b/inner/deep");
  touch(root + "/b/0");

  std::vector<std::string> out;
  std::vector<WalkError> errors;

  SUBCASE("nested directories in byte-wise order") {
    expand_inputs({root}, out, errors);
    CHECK(errors.empty());
    std::vector<std::string> expected = {root + "/B.txt", root + "/a/y",          root + "/a/z",
                                         root + "/b/0",   root + "/b/inner/deep", root + "/c.txt"};
    CHECK(out == expected);
  }

  SUBCASE("symlinks inside the walk: loops do not hang, files are emitted") {
    fs::create_directory_symlink("..", root + "/a/loop");
    fs::create_directory_symlink(root, root + "/b/to-root");
    fs::create_symlink("../c.txt", root + "/a/link-to-file");
    fs::create_symlink("nowhere", root + "/a/dangling");
    expand_inputs({root + "/a"}, out, errors);
    CHECK(errors.empty());
    std::vector<std::string> expected = {root + "/a/dangling", root + "/a/link-to-file",
                                         root + "/a/y", root + "/a/z"};
    CHECK(out == expected);
  }

  SUBCASE("a symlink to a directory named as an input is followed once") {
    fs::create_directory_symlink(root + "/a", work.path() / "link-to-a");
    fs::create_directory_symlink("..", root + "/a/loop");
    const std::string link = (work.path() / "link-to-a").native();
    expand_inputs({link}, out, errors);
    CHECK(errors.empty());
    std::vector<std::string> expected = {link + "/y", link + "/z"};
    CHECK(out == expected);
  }

  SUBCASE("special files are emitted for fetch to report") {
    REQUIRE(::mkfifo((root + "/a/fifo").c_str(), 0600) == 0);
    expand_inputs({root + "/a"}, out, errors);
    std::vector<std::string> expected = {root + "/a/fifo", root + "/a/y", root + "/a/z"};
    CHECK(out == expected);
  }

  SUBCASE("URIs, stdin, files and missing paths pass through in order") {
    std::vector<std::string> inputs = {"-",           "data:,hello",   "https://127.0.0.1/x",
                                       "file:///etc", root + "/c.txt", root + "/missing",
                                       root + "/a"};
    expand_inputs(inputs, out, errors);
    CHECK(errors.empty());
    std::vector<std::string> expected = {"-",           "data:,hello",   "https://127.0.0.1/x",
                                         "file:///etc", root + "/c.txt", root + "/missing",
                                         root + "/a/y", root + "/a/z"};
    CHECK(out == expected);
  }

  SUBCASE("output is appended") {
    out.push_back("earlier");
    expand_inputs({root + "/empty"}, out, errors);
    CHECK(out == std::vector<std::string>{"earlier"});
  }

  SUBCASE("an unreadable directory is reported and the walk goes on") {
    fs::create_directories(root + "/locked/sub");
    touch(root + "/locked/sub/f");
    fs::permissions(root + "/locked", fs::perms::none);
    expand_inputs({root + "/b", root + "/locked", root + "/a"}, out, errors);
    fs::permissions(root + "/locked", fs::perms::owner_all); // let the TempDir be removed
    if (::geteuid() == 0) {
      MESSAGE("running as root: permissions are not enforced, unreadable-directory check "
              "skipped");
      CHECK(out.size() == 5);
    } else {
      REQUIRE(errors.size() == 1);
      CHECK(errors[0].input == root + "/locked");
      CHECK(errors[0].message.find("Permission denied") != std::string::npos);
      std::vector<std::string> expected = {root + "/b/0", root + "/b/inner/deep", root + "/a/y",
                                           root + "/a/z"};
      CHECK(out == expected);
    }
  }
}

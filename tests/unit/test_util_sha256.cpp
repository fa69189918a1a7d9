#include "util/sha256.hpp"
#include "util/temp_file.hpp"

#include <doctest/doctest.h>

TEST_CASE("util::sha256") {
  SUBCASE("empty string") {
    CHECK(pss::sha256_hex("") ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
  SUBCASE("EICAR") {
    std::string eicar = R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";
    CHECK(pss::sha256_hex(eicar) ==
          "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f");
  }
  SUBCASE("incremental equals one-shot") {
    pss::Sha256 h;
    h.update("hello ");
    h.update("world");
    CHECK(h.hex_digest() == pss::sha256_hex("hello world"));
  }
  SUBCASE("file") {
    auto dir = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
    auto f = pss::TempFile::create(dir.path(), "f").value();
    REQUIRE(f.write("hello world"));
    CHECK(pss::sha256_file(f.path()).value() == pss::sha256_hex("hello world"));
  }
  SUBCASE("missing file names it") {
    auto r = pss::sha256_file("/nonexistent/pss-x");
    REQUIRE(!r);
    CHECK(r.error().message.find("/nonexistent/pss-x") != std::string::npos);
    CHECK(r.error().message.find("No such file") != std::string::npos);
  }
}

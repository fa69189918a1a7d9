#include "env/engine_env.hpp"
#include "util/temp_file.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <map>
#include <sys/stat.h>

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
} // namespace

TEST_CASE("env::env_prefix") {
  CHECK(env_prefix("clamav") == "CLAMAV");
  CHECK(env_prefix("my-engine.2") == "MY_ENGINE_2");
}

TEST_CASE("env::resolve_engine_env") {
  SUBCASE("built-in defaults follow XDG and HOME") {
    auto e =
        resolve_engine_env("clamav", "/opt/engines/clamav", {}, fake_env({{"HOME", "/home/u"}}))
            .value();
    CHECK(e.get("SDK_HOME") == "/opt/engines/clamav");
    CHECK(e.get("CONFIG_HOME") == "/home/u/.config/pssupervise/clamav");
    CHECK(e.get("SECRETS_HOME") == "/home/u/.config/pssupervise/clamav/secrets");
    CHECK(e.get("CACHE_HOME") == "/home/u/.cache/pssupervise/clamav");
    CHECK(e.get("DATA_HOME") == "/home/u/.local/share/pssupervise/clamav");
    CHECK(e.get("STATE_HOME") == "/home/u/.local/state/pssupervise/clamav");
    CHECK_FALSE(e.get("RUNTIME_DIR")); // no XDG_RUNTIME_DIR: made later, privately
    CHECK_FALSE(e.get("PATH"));
  }
  SUBCASE("XDG_RUNTIME_DIR gives a runtime dir") {
    auto e = resolve_engine_env("clamav", "/e", {}, fake_env({{"XDG_RUNTIME_DIR", "/run/user/1"}}))
                 .value();
    CHECK(e.get("CLAMAV_RUNTIME_DIR") == "/run/user/1/pssupervise/clamav");
    CHECK_FALSE(e.runtime_dir_from_user);
  }
  SUBCASE("manifest defaults expand against ENGINE_DIR and other variables") {
    std::map<std::string, std::string> defaults{{"PATH", "/usr/sbin"},
                                                {"DATA_HOME", "${ENGINE_DIR}/db"},
                                                {"SCANNER", "${CLAMAV_PATH}/clamd"},
                                                {"MAX_THREADS", "2"}};
    auto e = resolve_engine_env("clamav", "/e/clamav", defaults, fake_env({})).value();
    CHECK(e.get("PATH") == "/usr/sbin");
    CHECK(e.get("DATA_HOME") == "/e/clamav/db");
    CHECK(e.get("SCANNER") == "/usr/sbin/clamd");
    CHECK(e.get("MAX_THREADS") == "2");
  }
  SUBCASE("the process environment wins over the manifest") {
    std::map<std::string, std::string> defaults{{"PATH", "/usr/sbin"}, {"MAX_THREADS", "2"}};
    auto e = resolve_engine_env("clamav", "/e", defaults,
                                fake_env({{"CLAMAV_PATH", "/opt/clam/bin"},
                                          {"CLAMAV_MAX_THREADS", "8"},
                                          {"CLAMAV_RUNTIME_DIR", "/run/x"}}))
                 .value();
    CHECK(e.get("PATH") == "/opt/clam/bin");
    CHECK(e.get("MAX_THREADS") == "8");
    CHECK(e.get("RUNTIME_DIR") == "/run/x");
    CHECK(e.runtime_dir_from_user);
  }
  SUBCASE("a bad default names the variable") {
    auto r = resolve_engine_env("clamav", "/e", {{"DATA_HOME", "${NOPE}/db"}}, fake_env({}));
    REQUIRE(!r);
    CHECK(r.error().message.find("CLAMAV_DATA_HOME") != std::string::npos);
    CHECK(r.error().message.find("${NOPE}") != std::string::npos);
  }
}

TEST_CASE("env::prepare_runtime_dir") {
  auto base = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  SUBCASE("unset: a private dir is made, with a warning, and removed later") {
    auto e = resolve_engine_env("clamav", "/e", {}, fake_env({})).value();
    std::string warning;
    REQUIRE(prepare_runtime_dir(e, warning));
    CHECK(warning.find("CLAMAV_RUNTIME_DIR is not set") != std::string::npos);
    fs::path dir = *e.get("RUNTIME_DIR");
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    e.private_runtime_dir.reset();
    CHECK_FALSE(fs::exists(dir));
  }
  SUBCASE("set and missing: created 0700, no warning") {
    fs::path dir = base.path() / "rt";
    auto e =
        resolve_engine_env("clamav", "/e", {}, fake_env({{"CLAMAV_RUNTIME_DIR", dir}})).value();
    std::string warning;
    REQUIRE(prepare_runtime_dir(e, warning));
    CHECK(warning.empty());
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  SUBCASE("set and group-readable: refused") {
    fs::path dir = base.path() / "open";
    fs::create_directory(dir);
    ::chmod(dir.c_str(), 0755);
    auto e =
        resolve_engine_env("clamav", "/e", {}, fake_env({{"CLAMAV_RUNTIME_DIR", dir}})).value();
    std::string warning;
    auto r = prepare_runtime_dir(e, warning);
    REQUIRE(!r);
    CHECK(r.error().message.find("CLAMAV_RUNTIME_DIR") != std::string::npos);
    CHECK(r.error().message.find("0755") != std::string::npos);
  }
  SUBCASE("set to a file: refused") {
    fs::path file = base.path() / "file";
    auto f = pss::TempFile::create(base.path(), "file").value();
    auto e = resolve_engine_env("clamav", "/e", {}, fake_env({{"CLAMAV_RUNTIME_DIR", f.path()}}))
                 .value();
    std::string warning;
    auto r = prepare_runtime_dir(e, warning);
    REQUIRE(!r);
    CHECK(r.error().message.find("not a directory") != std::string::npos);
  }
}

#include "engine/manifest.hpp"

#include <doctest/doctest.h>
#include <filesystem>

using namespace pss::engine;
using nlohmann::json;

TEST_CASE("engine::parse_manifest") {
  SUBCASE("minimal") {
    auto m = parse_manifest(json::parse(R"({"product": "P", "vendor": "V", "categories": ["pe"],
                                            "driver": "oneshot"})"),
                            "/e/x");
    REQUIRE(m.has_value());
    CHECK(m->name == "x");
    CHECK(m->runtime == "native");
    CHECK(m->categories == std::vector<std::string>{"pe"});
  }
  SUBCASE("errors name the file and the field") {
    auto check = [](const char* text, const char* needle) {
      auto m = parse_manifest(json::parse(text), "/e/x");
      REQUIRE_FALSE(m.has_value());
      CAPTURE(m.error().message);
      CHECK(m.error().message.find("/e/x/engine.json") != std::string::npos);
      CHECK(m.error().message.find(needle) != std::string::npos);
    };
    check(R"({"vendor": "V", "categories": [], "driver": "d"})", "'product'");
    check(R"({"product": "P", "vendor": "V", "categories": "pe", "driver": "d"})", "'categories'");
    check(R"({"product": "P", "vendor": "V", "categories": [], "driver": "d", "runtime": "dos"})",
          "'runtime'");
    check(R"({"product": "P", "vendor": "V", "categories": [], "driver": "d", "env": {"A": 1}})",
          "'env.A'");
    check(R"({"product": "P", "vendor": "V", "categories": [], "driver": "d",
              "confidence": {"malicious": 2}})",
          "'confidence.malicious'");
  }
}

TEST_CASE("engine::shipped manifests load") {
  auto dir = std::filesystem::path(PSS_TEST_SAMPLES).parent_path().parent_path() / "engines";
  auto names = list_engines({dir});
  REQUIRE_FALSE(names.empty());
  for (const auto& name : names) {
    CAPTURE(name);
    auto m = load_manifest(dir / name);
    CHECK_MESSAGE(m.has_value(), (m ? std::string() : m.error().message));
  }
}

TEST_CASE("engine::parse_manifest refuses a timeout too large for 64-bit milliseconds") {
  // Found by fuzz_manifest: 3.22e24 s overflowed the conversion (undefined behaviour).
  auto m = parse_manifest(json::parse(R"({"product": "P", "vendor": "V", "categories": ["*"],
                                          "driver": "oneshot", "scan_timeout": 3.22e24})"),
                          "/e/x");
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().message.find("'scan_timeout' must be a positive number of seconds (at most "
                               "1e9)") != std::string::npos);
}

#include "engine/manifest.hpp"
#include "unit/samples.hpp"
#include "unit/support.hpp"

#include <doctest/doctest.h>
#include <filesystem>

using namespace pss::engine;
using nlohmann::json;
using pss::test::contains;

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
  auto dir = pss::test::samples_dir().parent_path().parent_path() / "engines";
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

TEST_CASE("engine::parse_manifest limits and pass_env") {
  auto parse = [](const std::string& extra) {
    return parse_manifest(json::parse(R"({"product": "P", "vendor": "V", "categories": ["*"],
                                          "driver": "oneshot")" +
                                      extra + "}"),
                          "/e/x");
  };
  SUBCASE("defaults: 1024 open files, 16 MiB of output, no CPU or address-space limit") {
    auto m = parse("").value();
    CHECK(m.limits.rlimits.open_files == 1024);
    CHECK(m.limits.output == 16u * 1024 * 1024);
    CHECK_FALSE(m.limits.rlimits.cpu_seconds);
    CHECK_FALSE(m.limits.rlimits.address_space);
    CHECK(m.pass_env.empty());
  }
  SUBCASE("every limit, sizes with units or in bytes") {
    auto m = parse(R"(, "limits": {"cpu_seconds": 2, "address_space": "2G", "open_files": 64,
                                   "output": 4096}, "pass_env": ["http_proxy", "LICENSE_SERVER"])")
                 .value();
    CHECK(m.limits.rlimits.cpu_seconds == 2);
    CHECK(m.limits.rlimits.address_space == 2ULL << 30);
    CHECK(m.limits.rlimits.open_files == 64);
    CHECK(m.limits.output == 4096);
    CHECK(m.pass_env == std::vector<std::string>{"http_proxy", "LICENSE_SERVER"});
    CHECK(parse(R"(, "limits": {"output": "16M"})").value().limits.output == 16u << 20);
  }
  SUBCASE("errors name the field") {
    auto error = [&](const std::string& extra) {
      auto m = parse(extra);
      REQUIRE_FALSE(m.has_value());
      return m.error().message;
    };
    CHECK(error(R"(, "limits": 3)").find("field 'limits' must be an object") != std::string::npos);
    CHECK(error(R"(, "limits": {"cpu_seconds": 0})")
              .find("field 'limits.cpu_seconds' must be an integer from 1") != std::string::npos);
    CHECK(error(R"(, "limits": {"cpu_seconds": 1.5})").find("'limits.cpu_seconds'") !=
          std::string::npos);
    CHECK(error(R"(, "limits": {"open_files": 3})").find("'limits.open_files'") !=
          std::string::npos);
    CHECK(error(R"(, "limits": {"address_space": "2T"})")
              .find("field 'limits.address_space' must be bytes or a size") != std::string::npos);
    CHECK(error(R"(, "limits": {"address_space": "1M"})")
              .find("field 'limits.address_space' must be at least 16 MiB") != std::string::npos);
    CHECK(error(R"(, "limits": {"output": -1})").find("'limits.output'") != std::string::npos);
    CHECK(error(R"(, "limits": {"cpu": 1})")
              .find("field 'limits.cpu' is not a limit (cpu_seconds, address_space, open_files, "
                    "output)") != std::string::npos);
    CHECK(error(R"(, "pass_env": ["A=B"])").find("field 'pass_env' must name environment") !=
          std::string::npos);
    CHECK(error(R"(, "pass_env": "HOME")").find("field 'pass_env' must be an array") !=
          std::string::npos);
  }
}

TEST_CASE("engine::parse_manifest setup, update, definitions, instances and reload") {
  auto parse = [](const std::string& extra) {
    return parse_manifest(json::parse(R"({"product": "P", "vendor": "V", "categories": ["*"],
                                          "driver": "jsonrpc")" +
                                      extra + "}"),
                          "/e/x");
  };
  SUBCASE("valid") {
    auto m = parse(R"(, "setup": {"argv": ["yarac", "r.yar", "{prepared}/r.yarc"], "timeout": 5},
                     "update": {"argv": ["fetch"]}, "definitions": {"files": ["${X_DATA_HOME}"]},
                     "daemon": {"argv": ["srv"], "instances": "${X_INSTANCES}",
                                "reload": {"command": "RELOAD", "log": "l", "done": "^ok",
                                           "failed": "fail"}})");
    REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
    REQUIRE(m->setup);
    CHECK(m->setup->argv.back() == "{prepared}/r.yarc");
    CHECK(m->setup->timeout == std::chrono::seconds(5));
    REQUIRE(m->update);
    CHECK(m->update->argv == std::vector<std::string>{"fetch"});
    CHECK(m->definitions == std::vector<std::string>{"${X_DATA_HOME}"});
    CHECK(m->daemon->instances == "${X_INSTANCES}");
    REQUIRE(m->daemon->reload);
    CHECK(m->daemon->reload->command == "RELOAD");
  }
  SUBCASE("errors name the field") {
    auto check = [&](const std::string& extra, const char* needle) {
      auto m = parse(extra);
      REQUIRE_FALSE(m.has_value());
      CAPTURE(m.error().message);
      CHECK(m.error().message.find(needle) != std::string::npos);
    };
    check(R"(, "setup": {"argv": []})", "'setup.argv' must be a non-empty array of strings");
    check(R"(, "update": {"argv": ["u"], "timeout": -1})", "'update.timeout'");
    check(R"(, "definitions": {"files": []})", "'definitions.files'");
    check(R"(, "daemon": {"argv": ["s"], "instances": 0})", "'daemon.instances'");
    check(R"(, "daemon": {"argv": ["s"], "instances": "many"})",
          "'daemon.instances' must be a number from 1 to 256 or \"cores\", not 'many'");
    check(R"(, "daemon": {"argv": ["s"], "reload": {"command": "R", "log": "l", "done": "(",
                                                    "failed": "f"}})",
          "'daemon.reload' has a bad regex");
  }
}

TEST_CASE("engine::parse_instances") {
  CHECK(parse_instances("3", 2).value() == 3);
  CHECK(parse_instances("cores", 2).value() == 2);
  CHECK(parse_instances("cores", 0).value() == 1);
  CHECK_FALSE(parse_instances("0", 2).has_value());
  CHECK_FALSE(parse_instances("257", 2).has_value());
  CHECK_FALSE(parse_instances("2x", 2).has_value());
  CHECK_FALSE(parse_instances("", 2).has_value());
}

TEST_CASE("engine::parse_manifest setup and update: commands with defaults") {
  auto parse = [](const std::string& extra) {
    return parse_manifest(json::parse(R"({"product": "P", "vendor": "V", "categories": ["*"],
                                          "driver": "oneshot")" +
                                      extra + "}"),
                          "/e/x");
  };
  SUBCASE("absent: none") {
    auto m = parse("").value();
    CHECK_FALSE(m.setup);
    CHECK_FALSE(m.update);
    CHECK(m.definitions.empty());
  }
  SUBCASE("argv alone: 600 s, utf-8, no help") {
    auto m = parse(R"(, "setup": {"argv": ["yarac", "r.yar", "{prepared}/r.yarc"]},
                     "update": {"argv": ["fetch"]})")
                 .value();
    REQUIRE(m.setup);
    CHECK(m.setup->argv == std::vector<std::string>{"yarac", "r.yar", "{prepared}/r.yarc"});
    CHECK(m.setup->timeout == std::chrono::seconds(600));
    CHECK(m.setup->encoding == "utf-8");
    CHECK(m.setup->help.empty());
    REQUIRE(m.update);
    CHECK(m.update->timeout == std::chrono::seconds(600));
  }
  SUBCASE("every field") {
    auto m = parse(R"(, "update": {"argv": ["fetch", "--all"], "timeout": 1.5,
                                   "encoding": "utf-16le", "help": "fetch new rules"})")
                 .value();
    REQUIRE(m.update);
    CHECK(m.update->argv == std::vector<std::string>{"fetch", "--all"});
    CHECK(m.update->timeout == std::chrono::milliseconds(1500));
    CHECK(m.update->encoding == "utf-16le");
    CHECK(m.update->help == "fetch new rules");
  }
  SUBCASE("null is absent") {
    auto m = parse(R"(, "setup": null, "update": null, "definitions": null)").value();
    CHECK_FALSE(m.setup);
    CHECK_FALSE(m.update);
    CHECK(m.definitions.empty());
  }
  SUBCASE("definitions: the files in order") {
    auto m =
        parse(R"(, "definitions": {"files": ["${X_DATA_HOME}/a", "${ENGINE_DIR}/rules"]})").value();
    CHECK(m.definitions == std::vector<std::string>{"${X_DATA_HOME}/a", "${ENGINE_DIR}/rules"});
  }
  SUBCASE("errors name the field") {
    auto error = [&](const std::string& extra) {
      auto m = parse(extra);
      REQUIRE_FALSE(m.has_value());
      return m.error().message;
    };
    CHECK(contains(error(R"(, "setup": ["yarac"])"), "field 'setup' must be {\"argv\""));
    CHECK(contains(error(R"(, "update": {"timeout": 5})"),
                   "field 'update.argv' must be a non-empty array of strings"));
    CHECK(contains(error(R"(, "setup": {"argv": ["a", 1]})"), "field 'setup.argv'"));
    CHECK(contains(error(R"(, "setup": {"argv": "yarac"})"), "field 'setup.argv'"));
    CHECK(contains(error(R"(, "setup": {"argv": ["a"], "timeout": "5"})"),
                   "field 'setup.timeout' must be a positive number"));
    CHECK(contains(error(R"(, "setup": {"argv": ["a"], "timeout": 0})"), "field 'setup.timeout'"));
    CHECK(contains(error(R"(, "update": {"argv": ["a"], "encoding": 8})"),
                   "field 'update.encoding' must be a string"));
    CHECK(contains(error(R"(, "update": {"argv": ["a"], "help": ["h"]})"),
                   "field 'update.help' must be a string"));
    CHECK(contains(error(R"(, "definitions": ["a"])"), "field 'definitions' must be an object"));
    CHECK(contains(error(R"(, "definitions": {})"), "field 'definitions.files' is missing"));
    CHECK(contains(error(R"(, "definitions": {"files": [1]})"),
                   "field 'definitions.files' must be an array of strings"));
    CHECK(contains(error(R"(, "definitions": {"files": []})"),
                   "field 'definitions.files' must name at least one file or folder"));
  }
}

TEST_CASE("engine::parse_manifest daemon.instances and daemon.reload") {
  auto parse = [](const std::string& daemon_extra) {
    return parse_manifest(json::parse(R"({"product": "P", "vendor": "V", "categories": ["*"],
                                          "driver": "jsonrpc", "daemon": {"argv": ["srv"])" +
                                      daemon_extra + "}}"),
                          "/e/x");
  };
  auto error = [&](const std::string& daemon_extra) {
    auto m = parse(daemon_extra);
    REQUIRE_FALSE(m.has_value());
    return m.error().message;
  };
  SUBCASE("instances: 1 by default; a number, \"cores\" or a ${VAR} kept as written") {
    CHECK(parse("").value().daemon->instances == "1");
    CHECK(parse(R"(, "instances": 4)").value().daemon->instances == "4");
    CHECK(parse(R"(, "instances": 256)").value().daemon->instances == "256");
    CHECK(parse(R"(, "instances": "8")").value().daemon->instances == "8");
    CHECK(parse(R"(, "instances": "cores")").value().daemon->instances == "cores");
    CHECK(parse(R"(, "instances": "${X_INSTANCES}")").value().daemon->instances ==
          "${X_INSTANCES}");
  }
  SUBCASE("instances out of range or of the wrong kind") {
    for (const char* bad : {"0", "257", "-1", "1.5", "true", "[2]", R"("")"}) {
      CAPTURE(bad);
      const auto why = error(std::string(R"(, "instances": )") + bad);
      CAPTURE(why);
      CHECK(contains(why, "/e/x/engine.json: field 'daemon.instances' must be a number from 1 "
                          "to 256"));
    }
    CHECK(contains(error(R"(, "instances": "300")"), "not '300'"));
  }
  SUBCASE("reload: every field, a 300 s timeout by default") {
    auto m = parse(R"j(, "reload": {"command": "RELOAD", "log": "${X_STATE_HOME}/clamd.log",
                                     "done": "^Database correctly reloaded",
                                     "failed": "^(ERROR|Database reload failed)"})j")
                 .value();
    REQUIRE(m.daemon->reload);
    const auto& r = *m.daemon->reload;
    CHECK(r.command == "RELOAD");
    CHECK(r.log == "${X_STATE_HOME}/clamd.log");
    CHECK(r.done == "^Database correctly reloaded");
    CHECK(r.failed == "^(ERROR|Database reload failed)");
    CHECK(r.timeout == std::chrono::seconds(300));
    CHECK(parse(R"(, "reload": {"command": "R", "log": "l", "done": "d", "failed": "f",
                                "timeout": 30})")
              .value()
              .daemon->reload->timeout == std::chrono::seconds(30));
    CHECK_FALSE(parse("").value().daemon->reload);
    CHECK_FALSE(parse(R"(, "reload": null)").value().daemon->reload);
  }
  SUBCASE("reload errors name the field") {
    CHECK(contains(error(R"(, "reload": "RELOAD")"), "field 'daemon.reload' must be an object"));
    CHECK(contains(error(R"(, "reload": {"log": "l", "done": "d", "failed": "f"})"),
                   "field 'daemon.reload.command' is missing"));
    CHECK(contains(error(R"(, "reload": {"command": "R", "done": "d", "failed": "f"})"),
                   "field 'daemon.reload.log' is missing"));
    CHECK(contains(error(R"(, "reload": {"command": "R", "log": "l", "failed": "f"})"),
                   "field 'daemon.reload.done' is missing"));
    CHECK(contains(error(R"(, "reload": {"command": "R", "log": "l", "done": "d"})"),
                   "field 'daemon.reload.failed' is missing"));
    CHECK(contains(error(R"(, "reload": {"command": 1, "log": "l", "done": "d", "failed": "f"})"),
                   "field 'daemon.reload.command' must be a string"));
    CHECK(contains(error(R"(, "reload": {"command": "R", "log": "l", "done": "d", "failed": "f",
                                         "timeout": 0})"),
                   "field 'daemon.reload.timeout'"));
    CHECK(contains(error(R"(, "reload": {"command": "R", "log": "l", "done": "d",
                                         "failed": "[unclosed"})"),
                   "has a bad regex [unclosed"));
  }
}

#include "engine/oneshot/interpret.hpp"
#include "engine/oneshot/spec.hpp"

#include <csignal>
#include <doctest/doctest.h>

using namespace pss::engine::oneshot;
using nlohmann::json;
using pss::model::Verdict;

namespace {
Invocation testvendor_like() {
  auto inv = parse_invocation(json::parse(R"J({
    "argv": ["scanner", "{path}"],
    "encoding": "cp1252",
    "timeout": {"base": 10, "per_mib": 2, "max": 30},
    "exit_codes": {"0": "benign", "1": "malicious", "2": "suspicious", "3": "error"},
    "rules": [
      {"pattern": ": infected: (?<name>.+)$", "verdict": "malicious"},
      {"pattern": ": suspicious: (?<name>.+)$", "verdict": "suspicious"},
      {"pattern": ": clean$", "verdict": "benign"},
      {"pattern": ": error: (?<error>.+)$"},
      {"pattern": "^Engine version: (?<engine_version>[0-9.]+)"}
    ],
    "require_match": true
  })J"),
                              "test");
  REQUIRE(inv.has_value());
  return *inv;
}

RunResult exited(int code, std::string out) {
  RunResult r;
  r.status = pss::process::ExitStatus{code, 0};
  r.output = std::move(out);
  return r;
}
} // namespace

TEST_CASE("oneshot::parse_invocation") {
  SUBCASE("timeouts grow with size up to the cap") {
    auto inv = testvendor_like();
    CHECK(inv.timeout.for_size(0) == std::chrono::seconds(10));
    CHECK(inv.timeout.for_size(5 * 1024 * 1024) == std::chrono::seconds(20));
    CHECK(inv.timeout.for_size(1ULL << 40) == std::chrono::seconds(30));
  }
  SUBCASE("errors name the field") {
    auto check = [](const char* text, const char* needle) {
      auto r = parse_invocation(json::parse(text), "engines/x/engine.json scan");
      REQUIRE_FALSE(r.has_value());
      CAPTURE(r.error().message);
      CHECK(r.error().message.find(needle) != std::string::npos);
    };
    check(R"({})", "'argv'");
    check(R"({"argv": []})", "'argv'");
    check(R"({"argv": ["x"], "encoding": "ebcdic"})", "'encoding'");
    check(R"({"argv": ["x"], "exit_codes": {"256": "benign"}})", "'exit_codes.256'");
    check(R"({"argv": ["x"], "exit_codes": {"0": "fine"}})", "'exit_codes.0'");
    check(R"({"argv": ["x"], "rules": [{"pattern": "("}]})", "'rules[0].pattern'");
    check(R"({"argv": ["x"], "rules": [{"pattern": "a", "verdict": "error"}]})",
          "'rules[0].verdict'");
    check(R"({"argv": ["x"], "timeout": "soon"})", "'timeout'");
  }
}

TEST_CASE("oneshot::interpret") {
  auto inv = testvendor_like();
  SUBCASE("detection with a non-ASCII name") {
    auto a =
        interpret(inv, exited(1, "Banner\n\nZ:\\x: infected: Trojan.\xc3\x89icar\n"), "tv.exe");
    CHECK(a.result == Verdict::malicious);
    CHECK(a.result_name == "Trojan.\xc3\x89icar");
  }
  SUBCASE("clean") {
    auto a = interpret(inv, exited(0, "Z:\\x: clean\nScan finished.\n"), "tv.exe");
    CHECK(a.result == Verdict::benign);
    CHECK_FALSE(a.error);
  }
  SUBCASE("suspicious") {
    auto a = interpret(inv, exited(2, "Z:\\x: suspicious: Heur.X\n"), "tv.exe");
    CHECK(a.result == Verdict::suspicious);
    CHECK(a.result_name == "Heur.X");
  }
  SUBCASE("an error exit code is unknown with the scanner's reason") {
    auto a = interpret(inv, exited(3, "Z:\\x: error: cannot open (Windows error 2)\n"), "tv.exe");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "tv.exe failed (exit status 3): cannot open (Windows error 2)");
  }
  SUBCASE("exit 0 with garbage output is never benign") {
    auto a = interpret(inv, exited(0, "lorem ipsum\n"), "tv.exe");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "unparseable output from tv.exe: lorem ipsum");
  }
  SUBCASE("an unexpected exit code") {
    auto a = interpret(inv, exited(5, "Z:\\x: clean\n"), "tv.exe");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "tv.exe exited with unexpected status 5: Z:\\x: clean");
  }
  SUBCASE("a crash") {
    RunResult r;
    r.status = pss::process::ExitStatus{0, 11};
    r.output = "Banner\n";
    auto a = interpret(inv, r, "tv.exe");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "crashed: tv.exe killed by signal 11 (SIGSEGV): Banner");
  }
  SUBCASE("a timeout") {
    RunResult r;
    r.timed_out = true;
    r.timeout = std::chrono::milliseconds(1500);
    r.status = pss::process::ExitStatus{0, 15};
    r.output = "Z:\\x: clean\n"; // whatever it printed, a killed run is not a verdict
    auto a = interpret(inv, r, "tv.exe");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "timeout: tv.exe did not finish within 1.5 s");
  }
  SUBCASE("too much output") {
    auto r = exited(0, "Z:\\x: clean\n");
    r.truncated = true;
    auto a = interpret(inv, r, "tv.exe");
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error->find("printed more than") != std::string::npos);
  }
  SUBCASE("too much output: the kill that stopped it is not a crash") {
    RunResult r;
    r.status = pss::process::ExitStatus{0, SIGKILL};
    r.truncated = true;
    r.output_limit = 16 * 1024 * 1024;
    auto a = interpret(inv, r, "tv.exe");
    CHECK(a.error == "tv.exe printed more than 16 MiB (its output limit, limits.output): stopped");
  }
  SUBCASE("out of CPU time") {
    RunResult r;
    r.cpu_limit = 2;
    r.status = pss::process::ExitStatus{0, SIGXCPU};
    CHECK(interpret(inv, r, "tv.exe").error ==
          "tv.exe killed by signal 24 (SIGXCPU): CPU limit 2 s (limits.cpu_seconds)");
    // It caught SIGXCPU: SIGKILL at the hard limit, with the CPU time to show for it.
    r.status = pss::process::ExitStatus{0, SIGKILL, std::chrono::milliseconds(3010)};
    CHECK(interpret(inv, r, "tv.exe").error ==
          "tv.exe killed by signal 9 (SIGKILL): CPU limit 2 s (limits.cpu_seconds)");
    // Killed by someone else, early: a crash as any other.
    r.status = pss::process::ExitStatus{0, SIGKILL, std::chrono::milliseconds(10)};
    CHECK(interpret(inv, r, "tv.exe").error->starts_with("crashed: tv.exe killed by signal 9"));
  }
  SUBCASE("the output's verdict wins over the exit code") {
    auto a = interpret(inv, exited(0, "Z:\\x: infected: X\n"), "tv.exe");
    CHECK(a.result == Verdict::malicious);
  }
}

TEST_CASE("oneshot::apply_rules") {
  auto inv = testvendor_like();
  auto f = apply_rules(inv.rules, "TestVendor 2.1\nEngine version: 2.1.0\nSignature x\n");
  CHECK(f.matched);
  CHECK(f.engine_version == "2.1.0");
  CHECK_FALSE(f.verdict);
  CHECK_FALSE(f.name);
}

TEST_CASE("oneshot::rules with a constant name and metadata") {
  auto inv = parse_invocation(json::parse(R"J({
    "argv": ["find", "EICAR", "{nt_path}"],
    "exit_codes": {"0": "malicious", "1": "benign"},
    "rules": [
      {"pattern": "^File not found - (?<error>.+)$", "verdict": "unknown"},
      {"pattern": "^---------- (?<scanned>.+)$", "metadata": ["scanned"]},
      {"pattern": "EICAR", "verdict": "malicious", "name": "Eicar-Test-File"}
    ],
    "require_match": true
  })J"),
                              "t");
  REQUIRE(inv.has_value());
  auto a = interpret(*inv, exited(0, "\n---------- Z:\\TMP\\F\xc3\xbc \xe2\x80\x93 X\nX5O EICAR\n"),
                     "find");
  CHECK(a.result == Verdict::malicious);
  CHECK(a.result_name == "Eicar-Test-File");
  CHECK(a.metadata["scanned"] == "Z:\\TMP\\F\xc3\xbc \xe2\x80\x93 X");
  auto missing = interpret(*inv, exited(1, "File not found - Z:\\NOPE\n"), "find");
  CHECK(missing.result == Verdict::unknown);
  CHECK(missing.error == "Z:\\NOPE");
  auto clean = interpret(*inv, exited(1, "\n---------- Z:\\TMP\\CLEAN\n"), "find");
  CHECK(clean.result == Verdict::benign);
  CHECK_FALSE(clean.result_name);
}

#include "celery/result_meta.hpp"
#include "unit/celery_captures.hpp"
#include "unit/support.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;
using namespace pss::test::captures;
using namespace std::chrono_literals;

TEST_CASE("celery::result_key") {
  CHECK(result_key("9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10") ==
        "celery-task-meta-9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10");
}

TEST_CASE("celery::result metas") {
  SUBCASE("SUCCESS, byte for byte (monitor2)") {
    CHECK(success_meta("11111111-2222-3333-4444-555555555555",
                       Json::parse(R"({"ok": true, "path": "/data/img.bin", "files": [1, 2, 3],
                                       "score": 0.5})"),
                       at("2026-11-24T14:43:19.754208")) == k_success_meta);
  }
  SUBCASE("FAILURE, byte for byte (monitor2)") {
    const std::string traceback = Json::parse(k_failure_meta)["traceback"];
    CHECK(failure_meta("22222222-2222-3333-4444-555555555555", "ValueError", "builtins",
                       Json::parse(R"(["bad depth", 7])"), traceback,
                       at("2026-11-24T14:43:19.935385")) == k_failure_meta);
    const std::string custom_traceback = Json::parse(k_failure_custom_meta)["traceback"];
    CHECK(failure_meta("33333333-2222-3333-4444-555555555555", "EngineError", "wapp",
                       Json::array({"custom failure"}), custom_traceback,
                       at("2026-11-24T14:43:20.087631")) == k_failure_custom_meta);
  }
  SUBCASE("STARTED, byte for byte (monitor2)") {
    CHECK(started_meta("11111111-2222-3333-4444-555555555555", 15155, "w1@vm") == k_started_meta);
  }
  SUBCASE("REVOKED expired and NotRegistered (docs/celery.md §8)") {
    const TimePoint done = at("2026-11-24T14:43:19.754208");
    CHECK(revoked_meta("99999999-0000-0000-0000-000000000009", "expired", done) ==
          k_revoked_expired);
    CHECK(not_registered_meta("99999999-0000-0000-0000-000000000009", "engine.nope", done) ==
          k_not_registered);
  }
  SUBCASE("an empty traceback is null; date_done drops a zero fraction; defaults to now") {
    const Json j =
        Json::parse(failure_meta("t", "RuntimeError", "builtins", Json::array({"scan failed"}), "",
                                 at("2026-11-24T14:43:19Z")));
    CHECK(j["traceback"].is_null());
    CHECK(j["date_done"] == "2026-11-24T14:43:19");
    const auto before = std::chrono::system_clock::now();
    const Json now = Json::parse(success_meta("t", 1));
    CHECK(at(now["date_done"].get<std::string>()) >= before - 1us);
    CHECK(at(now["date_done"].get<std::string>()) <= std::chrono::system_clock::now());
  }
}

TEST_CASE("celery::parse_result_meta") {
  SUBCASE("SUCCESS") {
    const auto m = parse_result_meta(k_success_meta);
    REQUIRE_MESSAGE(m.has_value(), error_of(m));
    CHECK(m->status == "SUCCESS");
    CHECK(m->ready());
    CHECK(m->result["files"] == Json::parse("[1, 2, 3]"));
    CHECK_FALSE(m->traceback.has_value());
    CHECK(m->date_done == "2026-11-24T14:43:19.754208");
    CHECK(m->task_id == "11111111-2222-3333-4444-555555555555");
    CHECK(m->error_text() == "");
  }
  SUBCASE("FAILURE: the exception as Python prints it") {
    const auto m = parse_result_meta(k_failure_meta).value();
    CHECK(m.ready());
    CHECK(m.error_text() == "ValueError: ('bad depth', 7)");
    REQUIRE(m.traceback.has_value());
    CHECK(m.traceback->ends_with("ValueError: ('bad depth', 7)\n")); // what Python printed
    const auto custom = parse_result_meta(k_failure_custom_meta).value();
    CHECK(custom.error_text() == "EngineError: custom failure");
    CHECK(custom.traceback->ends_with("wapp.EngineError: custom failure\n"));
    CHECK(parse_result_meta(k_not_registered).value().error_text() == "NotRegistered: engine.nope");
  }
  SUBCASE("REVOKED is ready; STARTED, RETRY and PENDING are not") {
    const auto revoked = parse_result_meta(k_revoked_expired).value();
    CHECK(revoked.ready());
    CHECK(revoked.error_text() == "TaskRevokedError: expired");
    const auto started = parse_result_meta(k_started_meta).value();
    CHECK_FALSE(started.ready());
    CHECK(started.result["pid"] == 15155);
    CHECK(started.error_text() == "");
    CHECK_FALSE(parse_result_meta(R"({"status": "RETRY", "result": null})").value().ready());
    CHECK_FALSE(parse_result_meta(R"({"status": "PENDING", "result": null})").value().ready());
  }
  SUBCASE("exception shapes of docs/celery.md §6") {
    const auto text = [](std::string_view result) {
      return parse_result_meta(fmt::format(R"({{"status": "FAILURE", "result": {}}})", result))
          .value()
          .error_text();
    };
    CHECK(text(R"({"exc_type": "RuntimeError", "exc_message": ["scan failed: disk error"],
                   "exc_module": "builtins"})") == "RuntimeError: scan failed: disk error");
    CHECK(text(R"({"exc_type": "ScanError", "exc_message": ["bad header", 17],
                   "exc_module": "engine.errors"})") == "ScanError: ('bad header', 17)");
    CHECK(text(R"({"exc_type": "ValueError", "exc_message": "plain string message"})") ==
          "ValueError: plain string message");
    CHECK(text(R"({"exc_type": "TimeLimitExceeded", "exc_message": [30],
                   "exc_module": "billiard.exceptions"})") == "TimeLimitExceeded: 30");
    CHECK(text(R"({"exc_type": "KeyError", "exc_message": [], "exc_module": "builtins"})") ==
          "KeyError");
    CHECK(text(R"({"exc_type": "E", "exc_message": ["it's", null, true, 1.5]})") ==
          "E: (\"it's\", None, True, 1.5)");
    CHECK(text(R"("not an exception")") == "FAILURE: \"not an exception\"");
  }
  SUBCASE("errors") {
    // Found by fuzz_celery: nlohmann's out_of_range escaped and would have ended the worker.
    CHECK_FALSE(parse_result_meta("[1e999]").has_value());
    CHECK(contains(error_of(parse_result_meta("{")), "celery result: the value is not JSON"));
    CHECK(error_of(parse_result_meta("[]")) ==
          "celery result: expected a JSON object, got array []");
    CHECK(error_of(parse_result_meta(R"({"result": 1})")) ==
          "celery result: status is missing or not a string");
    CHECK(error_of(parse_result_meta(R"({"status": "SUCCESS"})")) ==
          "celery result: result is missing");
  }
}

TEST_CASE("a result with a NUL byte after its JSON is refused (found by fuzz_celery)") {
  std::string meta = R"({"status": "SUCCESS", "result": 1})";
  meta += '\0';
  CHECK(contains(error_of(parse_result_meta(meta)), "NUL"));
}

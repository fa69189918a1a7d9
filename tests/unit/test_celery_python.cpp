#include "celery/python.hpp"
#include "unit/celery_captures.hpp"
#include "unit/support.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;
using namespace pss::test::captures;

TEST_CASE("celery::isoformat") {
  using namespace std::chrono;
  const TimePoint base = sys_days(year(2026) / November / day(24)) + 14h + 46min + 43s;
  SUBCASE("parse: Celery's forms") {
    CHECK(at("2026-11-24T14:46:43.925252+00:00") == base + 925252us);
    CHECK(at("2026-11-24T14:46:43+00:00") == base);
    CHECK(at("2026-11-24T14:46:43Z") == base);
    CHECK(at("2026-11-24T14:46:43") == base); // naive is UTC
    CHECK(at("2026-11-24 14:46:43.5") == base + 500ms);
    CHECK(at("2026-11-24T16:46:43+02:00") == base);
    CHECK(at("2026-11-24T12:16:43-0230") == base);
    CHECK(at("2026-11-24T15:46:43+01") == base);
    CHECK(at("2026-11-24T14:46") == base - 43s);
    CHECK(at("2026-11-24T14:46:43.123456789Z") == base + 123456789ns);
  }
  SUBCASE("parse errors name the text") {
    CHECK(error_of(parse_isoformat("2026-11-24")) ==
          "\"2026-11-24\" is not an ISO 8601 time (expected "
          "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+hh:mm|+hhmm|+hh])");
    CHECK(contains(error_of(parse_isoformat("2026-02-30T00:00:00")), "no such date"));
    CHECK(contains(error_of(parse_isoformat("2026-11-24T24:00:00")), "time of day out of range"));
    CHECK(contains(error_of(parse_isoformat("2026-11-24T10:00:00+25:00")), "offset out of range"));
    CHECK_FALSE(parse_isoformat("2026-11-24T10:00:00 ").has_value());
    CHECK_FALSE(parse_isoformat("2026-11-24T10:00:00.").has_value());
  }
  SUBCASE("format: Python's isoformat(), microseconds, no zero fraction") {
    CHECK(to_isoformat(base + 925252us) == "2026-11-24T14:46:43.925252+00:00");
    CHECK(to_isoformat(base + 5us) == "2026-11-24T14:46:43.000005+00:00");
    CHECK(to_isoformat(base + 999ns) == "2026-11-24T14:46:43+00:00"); // truncated
    CHECK(to_isoformat(base) == "2026-11-24T14:46:43+00:00");
    CHECK(to_isoformat_naive(base + 754208us) == "2026-11-24T14:46:43.754208");
    CHECK(to_isoformat_naive(base) == "2026-11-24T14:46:43");
    CHECK(to_isoformat(sys_days(year(1969) / December / day(31)) + 23h + 59min + 59s + 1us) ==
          "1969-12-31T23:59:59.000001+00:00");
  }
  SUBCASE("round trip") {
    const TimePoint t = base + 123456us;
    CHECK(at(to_isoformat(t)) == t);
    CHECK(at(to_isoformat_naive(t)) == t);
  }
}

TEST_CASE("celery::to_python_json") {
  CHECK(to_python_json(Json::parse(R"({"a":[1,2.5,"x"],"b":{},"c":[],"d":null,"e":true})")) ==
        R"({"a": [1, 2.5, "x"], "b": {}, "c": [], "d": null, "e": true})");
  CHECK(to_python_json(Json::parse(R"({"z":1,"a":2})")) == R"({"z": 1, "a": 2})"); // order kept
  CHECK(to_python_json("é😀\u007f\n\t\x01\"\\/") == R"("\u00e9\ud83d\ude00\u007f\n\t\u0001\"\\/")");
  CHECK(to_python_json(Json::parse("[1.0, 0.5, 1e16, 1e-05, 123456789012345678, -0.0]")) ==
        "[1.0, 0.5, 1e+16, 1e-05, 123456789012345678, -0.0]");
  CHECK(to_python_json(std::string("a\xff")) == R"("a\ufffd")"); // invalid UTF-8
}

TEST_CASE("celery::saferepr") {
  SUBCASE("as celery renders argsrepr and kwargsrepr (captures)") {
    CHECK(saferepr(Json::parse(R"([{"path": "/data/img.bin", "depth": 2}])")) ==
          "[{'path': '/data/img.bin', 'depth': 2}]");
    CHECK(saferepr(Json::parse(R"({"mode": "fast"})")) == "{'mode': 'fast'}");
    CHECK(saferepr(Json::object()) == "{}");
    CHECK(saferepr(Json::array()) == "[]");
  }
  SUBCASE("scalars; strings single-quoted with only ' escaped") {
    CHECK(saferepr(Json::parse(R"(["it's", "a\"b", "\n\t", 1.0, 1e16, 1e-05, null, true, false,
                                   -3])")) ==
          "['it\\'s', 'a\"b', '\n\t', 1.0, 1e+16, 1e-05, None, True, False, -3]");
  }
  SUBCASE("containers nested deeper than three levels") {
    CHECK(saferepr(Json::parse(R"([[[[1]]], {"k": {"l": {"m": 1}}}])")) ==
          "[[[[...]]], {'k': {'l': {...}}}]");
    CHECK(saferepr(Json::parse("[[[[]]]]")) == "[[[[...]]]]");
  }
  SUBCASE("cut at 1024 characters, as Python's saferepr(x, 1024)") {
    CHECK(saferepr(Json::array({Json::object({{"a", std::string(2000, 'x')}})})) ==
          "[{'a': '" + std::string(1017, 'x') + "...', ...]");
    const std::string words = [] {
      std::string s;
      for (int i = 0; i < 200; ++i) {
        s += "long words ";
      }
      return s;
    }();
    const std::string keyed = saferepr(Json::object({{words, 1}}));
    CHECK(keyed.size() == 1034);
    CHECK(keyed.ends_with(" long words...', ...}"));
    Json numbers = Json::array();
    for (int i = 0; i < 600; ++i) {
      numbers.push_back(i);
    }
    const std::string cut = saferepr(Json::array({numbers}));
    CHECK(cut.size() == 1034);
    CHECK(cut.ends_with(", 224, 225, 22..., ...]]"));
    Json ones = Json::array();
    for (int i = 0; i < 300; ++i) {
      ones.push_back(1);
    }
    CHECK(saferepr(Json::array({ones, Json::array({2, 2})})).size() == 910); // under the limit
  }
  SUBCASE("lengths count code points, as Python does") {
    const std::string e1000 = [] {
      std::string s;
      for (int i = 0; i < 1000; ++i) {
        s += "é";
      }
      return s;
    }();
    CHECK(saferepr(Json::array({e1000})) == "['" + e1000 + "']"); // 1004 < 1024: whole
    // Cut at 1023 code points; the list's "]" is the token dropped at the limit, as in Python.
    CHECK(saferepr(Json::array({e1000 + e1000})) ==
          "['" + e1000 + e1000.substr(0, 46) + "...', ...");
  }
}

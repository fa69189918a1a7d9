#include "unit/support.hpp"
#include "util/iso8601.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <string>

using pss::format_iso8601;
using pss::parse_iso8601;
using pss::test::error_of;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace {

constexpr year_month_day k_day{2026y, November, 24d};

system_clock::time_point utc(year_month_day d, system_clock::duration since_midnight = {}) {
  return sys_days(d) + since_midnight;
}

// The error expected for text that does not have the expected shape.
std::string shape_error(std::string_view text) {
  return "\"" + std::string(text) +
         "\" is not an ISO 8601 time (expected "
         "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+hh:mm|+hhmm|+hh])";
}

} // namespace

// A failed CHECK on two times shows them (nanoseconds since the epoch), not "{?}".
template <>
struct doctest::StringMaker<system_clock::time_point> {
  static doctest::String convert(const system_clock::time_point& t) {
    return std::to_string(t.time_since_epoch().count()).c_str();
  }
};

TEST_CASE("parse_iso8601") {
  SUBCASE("separators, seconds optional, Z or no offset for UTC") {
    const auto expected = utc(k_day, 14h + 46min + 43s);
    for (const char* text :
         {"2026-11-24T14:46:43Z", "2026-11-24t14:46:43z", "2026-11-24 14:46:43Z",
          "2026-11-24T14:46:43", "2026-11-24T14:46:43+00:00", "2026-11-24T14:46:43-00:00"}) {
      const std::string text_ = text; // doctest shows a const char* as a pointer
      CAPTURE(text_);
      const auto t = parse_iso8601(text);
      REQUIRE_MESSAGE(t.has_value(), error_of(t));
      CHECK(*t == expected);
    }
    CHECK(parse_iso8601("2026-11-24T14:46").value() == utc(k_day, 14h + 46min));
    CHECK(parse_iso8601("2026-11-24T14:46Z").value() == utc(k_day, 14h + 46min));
  }

  SUBCASE("offsets: +hh:mm, +hhmm, +hh, east and west, across midnight and a leap day") {
    CHECK(parse_iso8601("2026-11-24T14:46:43+02:00").value() == utc(k_day, 12h + 46min + 43s));
    CHECK(parse_iso8601("2026-11-24T14:46:43+0200").value() == utc(k_day, 12h + 46min + 43s));
    CHECK(parse_iso8601("2026-11-24T14:46:43+02").value() == utc(k_day, 12h + 46min + 43s));
    CHECK(parse_iso8601("2026-11-24T14:46:43-05:30").value() == utc(k_day, 20h + 16min + 43s));
    CHECK(parse_iso8601("2026-11-24T14:46:43+23:59").value() ==
          utc(k_day, 14h + 46min + 43s - 23h - 59min));
    CHECK(parse_iso8601("2026-11-24T00:30:00+01:00").value() == utc(k_day, -30min));
    CHECK(parse_iso8601("2024-02-28T23:30:00-01:00").value() == utc(2024y / February / 29d, 30min));
    CHECK(parse_iso8601("2023-12-31T23:00:00-02:00").value() == utc(2024y / January / 1d, 1h));
  }

  SUBCASE("fractions: any number of digits, '.' or ',', kept to the nanosecond, the rest cut") {
    const auto whole = utc(k_day, 14h + 46min + 43s);
    CHECK(parse_iso8601("2026-11-24T14:46:43.5Z").value() == whole + 500ms);
    CHECK(parse_iso8601("2026-11-24T14:46:43,5Z").value() == whole + 500ms);
    CHECK(parse_iso8601("2026-11-24T14:46:43.925252+00:00").value() == whole + 925252us);
    CHECK(parse_iso8601("2026-11-24T14:46:43.000001").value() == whole + 1us);
    CHECK(parse_iso8601("2026-11-24T14:46:43.123456789Z").value() == whole + 123456789ns);
    CHECK(parse_iso8601("2026-11-24T14:46:43.1234567899999Z").value() == whole + 123456789ns);
    CHECK(parse_iso8601("2026-11-24T14:46:43.0Z").value() == whole);
    // The fraction belongs to the local time: the offset moves whole minutes only.
    CHECK(parse_iso8601("2026-11-24T14:46:43.25-01:00").value() == whole + 1h + 250ms);
  }

  SUBCASE("the edges of the clock's range") {
    CHECK(parse_iso8601("1970-01-01T00:00:00Z").value() == system_clock::time_point{});
    CHECK(parse_iso8601("1969-12-31T23:59:59.5Z").value() == system_clock::time_point{} - 500ms);
    CHECK(parse_iso8601("2262-01-01T00:00:00Z").value() == utc(2262y / January / 1d));
    CHECK(parse_iso8601("1678-01-01T00:00:00Z").value() == utc(1678y / January / 1d));
  }

  SUBCASE("text of the wrong shape: the error quotes it and shows the expected form") {
    for (const char* bad : {"",
                            "yesterday",
                            "2026-11-24",
                            "2026-11-24T",
                            "2026-11-24T14",
                            "2026-11-24T14:4",
                            "2026-11-24X14:46:43Z",
                            "2026/11/24T14:46:43Z",
                            "26-11-24T14:46:43Z",
                            " 2026-11-24T14:46:43Z",
                            "2026-11-24T14:46:43Z ",
                            "2026-11-24T14:46:4Z",
                            "2026-11-24T14:46.5Z",
                            "2026-11-24T14:46:43.Z",
                            "2026-11-24T14:46:43.",
                            "2026-11-24T14:46:43+2",
                            "2026-11-24T14:46:43+02:",
                            "2026-11-24T14:46:43+02:0",
                            "2026-11-24T14:46:43+020",
                            "2026-11-24T14:46:43Zjunk",
                            "2026-11-24T14:46:43Z+01:00",
                            "2026-11-24T14:46:43 +01:00",
                            "2026-11-24T14:46:43UTC",
                            "+2026-11-24T14:46:43Z"}) {
      const std::string text = bad;
      CAPTURE(text);
      CHECK(error_of(parse_iso8601(text)) == shape_error(text));
    }
  }

  SUBCASE("right shape, impossible values: the error says which part is wrong") {
    const std::pair<const char*, const char*> cases[] = {
        {"2026-13-01T00:00:00Z", "no such date"},
        {"2026-00-01T00:00:00Z", "no such date"},
        {"2026-11-31T00:00:00Z", "no such date"},
        {"2026-02-29T00:00:00Z", "no such date"}, // not a leap year
        {"2026-11-24T24:00:00Z", "time of day out of range"},
        {"2026-11-24T14:60:00Z", "time of day out of range"},
        {"2026-11-24T14:46:60Z", "time of day out of range"}, // no leap seconds
        {"2026-11-24T14:46:43+24:00", "offset out of range"},
        {"2026-11-24T14:46:43-00:60", "offset out of range"},
        {"9999-12-31T23:59:59Z", "out of range"}, // past the nanosecond clock (2262)
        {"0000-01-01T00:00:00Z", "out of range"},
        {"1677-01-01T00:00:00Z", "out of range"},
    };
    for (const auto& [bad, why] : cases) {
      const std::string text = bad;
      CAPTURE(text);
      CHECK(error_of(parse_iso8601(text)) ==
            "\"" + text + "\" is not an ISO 8601 time (" + std::string(why) + ")");
    }
    CHECK(parse_iso8601("2024-02-29T00:00:00Z").has_value()); // a leap year's is fine
  }

  SUBCASE("long input is quoted cut to 60 characters") {
    const std::string text = "2026-11-24T14:46:43Z" + std::string(100, 'x');
    CHECK(error_of(parse_iso8601(text)) == shape_error(text.substr(0, 60)));
  }
}

TEST_CASE("format_iso8601") {
  const auto t = utc(k_day, 14h + 46min + 43s);
  SUBCASE("UTC, whole seconds and Z by default; the fraction is dropped, not rounded") {
    CHECK(format_iso8601(t) == "2026-11-24T14:46:43Z");
    CHECK(format_iso8601(t + 999999999ns) == "2026-11-24T14:46:43Z");
    CHECK(format_iso8601(system_clock::time_point{}) == "1970-01-01T00:00:00Z");
    CHECK(format_iso8601(utc(2024y / February / 29d, 23h + 59min + 59s)) == "2024-02-29T23:59:59Z");
  }
  SUBCASE("microseconds when asked and not zero, cut (not rounded)") {
    CHECK(format_iso8601(t + 925252us, true) == "2026-11-24T14:46:43.925252Z");
    CHECK(format_iso8601(t + 1us, true) == "2026-11-24T14:46:43.000001Z");
    CHECK(format_iso8601(t + 999999999ns, true) == "2026-11-24T14:46:43.999999Z");
    CHECK(format_iso8601(t + 999ns, true) == "2026-11-24T14:46:43Z"); // under a microsecond
    CHECK(format_iso8601(t, true) == "2026-11-24T14:46:43Z");
  }
  SUBCASE("the suffix: +00:00 as Celery writes, nothing for a naive time") {
    CHECK(format_iso8601(t + 925252us, true, "+00:00") == "2026-11-24T14:46:43.925252+00:00");
    CHECK(format_iso8601(t, false, "") == "2026-11-24T14:46:43");
  }
  SUBCASE("before 1970: the day and second below, the fraction above") {
    CHECK(format_iso8601(system_clock::time_point{} - 500ms, true) ==
          "1969-12-31T23:59:59.500000Z");
    CHECK(format_iso8601(system_clock::time_point{} - 1ns) == "1969-12-31T23:59:59Z");
  }
  SUBCASE("what it writes, parse_iso8601 reads back to the microsecond") {
    for (const auto when :
         {t, t + 925252us, utc(2024y / February / 29d, 1s), system_clock::time_point{} - 250ms}) {
      for (const char* suffix : {"Z", "+00:00", ""}) {
        const auto text = format_iso8601(when, true, suffix);
        CAPTURE(text);
        CHECK(parse_iso8601(text).value() == when);
      }
    }
  }
}

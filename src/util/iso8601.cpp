#include "util/iso8601.hpp"

#include <fmt/format.h>

namespace pss {

namespace {

using namespace std::chrono;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A fixed-width unsigned number at s[i...]; advances i.
bool read_number(std::string_view s, std::size_t& i, std::size_t width, int& out) {
  if (s.size() - i < width) {
    return false;
  }
  out = 0;
  for (std::size_t k = 0; k < width; ++k) {
    if (!is_digit(s[i + k])) {
      return false;
    }
    out = out * 10 + (s[i + k] - '0');
  }
  i += width;
  return true;
}

bool eat(std::string_view s, std::size_t& i, char c) {
  if (i < s.size() && s[i] == c) {
    ++i;
    return true;
  }
  return false;
}

} // namespace

Result<system_clock::time_point> parse_iso8601(std::string_view s) {
  const auto fail = [&](std::string_view why) {
    return make_error(fmt::format("\"{}\" is not an ISO 8601 time ({})", s.substr(0, 60), why));
  };
  constexpr std::string_view k_form = "expected YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+hh:mm|+hhmm|+hh]";
  std::size_t i = 0;
  int y = 0;
  int mo = 0;
  int d = 0;
  int h = 0;
  int mi = 0;
  int sec = 0;
  if (!read_number(s, i, 4, y) || !eat(s, i, '-') || !read_number(s, i, 2, mo) || !eat(s, i, '-') ||
      !read_number(s, i, 2, d)) {
    return fail(k_form);
  }
  if (!(eat(s, i, 'T') || eat(s, i, 't') || eat(s, i, ' ')) || !read_number(s, i, 2, h) ||
      !eat(s, i, ':') || !read_number(s, i, 2, mi)) {
    return fail(k_form);
  }
  nanoseconds fraction{0};
  if (eat(s, i, ':')) {
    if (!read_number(s, i, 2, sec)) {
      return fail(k_form);
    }
    if (eat(s, i, '.') || eat(s, i, ',')) {
      const std::size_t start = i;
      long long ns = 0;
      for (; i < s.size() && is_digit(s[i]); ++i) {
        if (i - start < 9) {
          ns = ns * 10 + (s[i] - '0');
        }
      }
      if (i == start) {
        return fail(k_form);
      }
      for (std::size_t k = i - start; k < 9; ++k) {
        ns *= 10;
      }
      fraction = nanoseconds(ns);
    }
  }
  minutes offset{0};
  const bool zulu = eat(s, i, 'Z') || eat(s, i, 'z');
  if (!zulu && i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i++] == '-' ? -1 : 1;
    int oh = 0;
    int om = 0;
    if (!read_number(s, i, 2, oh)) {
      return fail(k_form);
    }
    const bool colon = eat(s, i, ':');
    if ((colon || i < s.size()) && !read_number(s, i, 2, om)) {
      return fail(k_form);
    }
    if (oh > 23 || om > 59) {
      return fail("offset out of range");
    }
    offset = minutes(sign * (oh * 60 + om));
  }
  if (i != s.size()) {
    return fail(k_form);
  }
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok()) {
    return fail("no such date");
  }
  if (h > 23 || mi > 59 || sec > 59) {
    return fail("time of day out of range");
  }
  const auto secs = sys_days(ymd).time_since_epoch() + hours(h) + minutes(mi) + seconds(sec) -
                    offset; // in seconds: no overflow for years 0000-9999
  const auto limit = duration_cast<seconds>(system_clock::duration::max()).count() - 1;
  if (secs.count() > limit || secs.count() < -limit) {
    return fail("out of range");
  }
  return system_clock::time_point(duration_cast<system_clock::duration>(secs + fraction));
}

std::string format_iso8601(system_clock::time_point t, bool with_microseconds,
                           std::string_view suffix) {
  const auto us = floor<microseconds>(t);
  const auto day_start = floor<days>(us);
  const year_month_day ymd{day_start};
  const hh_mm_ss hms{us - day_start};
  std::string out =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  hms.hours().count(), hms.minutes().count(), hms.seconds().count());
  if (with_microseconds && hms.subseconds().count() != 0) {
    out += fmt::format(".{:06}", hms.subseconds().count());
  }
  out += suffix;
  return out;
}

} // namespace pss

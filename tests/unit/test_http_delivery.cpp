#include "http/delivery.hpp"

#include <doctest/doctest.h>

using namespace pss::http;
using namespace std::chrono_literals;

TEST_CASE("http::is_transient_status") {
  for (int s : {408, 425, 429, 500, 502, 503, 504, 599}) {
    CHECK_MESSAGE(is_transient_status(s), s);
  }
  for (int s : {200, 301, 302, 400, 401, 403, 404, 405, 410, 413, 422, 600}) {
    CHECK_MESSAGE(!is_transient_status(s), s);
  }
}

TEST_CASE("http::parse_retry_after") {
  // Sun, 06 Nov 1994 08:49:37 GMT, as RFC 9110 writes it.
  auto now = std::chrono::system_clock::from_time_t(784111777);
  CHECK(parse_retry_after("0", now) == 0ms);
  CHECK(parse_retry_after("120", now) == 120000ms);
  CHECK(parse_retry_after("99999999", now) == std::chrono::milliseconds(24h)); // capped
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now) == 10000ms);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now) == 0ms); // in the past
  CHECK_FALSE(parse_retry_after("", now).has_value());
  CHECK_FALSE(parse_retry_after("-5", now).has_value());
  CHECK_FALSE(parse_retry_after("1.5", now).has_value());
  CHECK_FALSE(parse_retry_after("soon", now).has_value());
  CHECK_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT trailing", now).has_value());
}

TEST_CASE("http::to_string(DeliveryResult)") {
  CHECK(to_string(DeliveryResult::delivered) == "delivered");
  CHECK(to_string(DeliveryResult::refused) == "refused");
  CHECK(to_string(DeliveryResult::expired) == "expired");
  CHECK(to_string(DeliveryResult::abandoned) == "abandoned");
}

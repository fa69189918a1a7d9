#include "celery/message_json.hpp"
#include "unit/support.hpp"

#include <doctest/doctest.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;

TEST_CASE("celery::message_json") {
  SUBCASE("shown: Python's JSON, cut to 60 characters") {
    CHECK(shown(Json::parse(R"({"a":[1,"x"]})")) == R"({"a": [1, "x"]})");
    const std::string cut = shown(Json(std::string(100, 'x')));
    CHECK(cut.size() == 60);
    CHECK(cut == "\"" + std::string(56, 'x') + "...");
  }
  SUBCASE("errors say which message and which field") {
    CHECK(message_error("body is empty").message == "celery message: body is empty");
    CHECK(type_error("headers.id", "a string", Json(7)).message ==
          "celery message: headers.id must be a string, got number 7");
  }
  SUBCASE("parse_json: nlohmann's reason without its tag, a NUL, a number out of range") {
    CHECK(parse_json(R"({"k": [1, 2]})", "the body").value()["k"][1] == 2);
    const std::string bad = error_of(parse_json("{", "the body"));
    CHECK(bad.starts_with("the body is not JSON ("));
    CHECK_FALSE(contains(bad, "[json.exception."));
    CHECK(error_of(parse_json(std::string("[1]\0x", 5), "the envelope")) ==
          "the envelope is not JSON (a NUL byte at offset 3)");
    CHECK(contains(error_of(parse_json("1e999", "the body")), "the body is not JSON"));
  }
  SUBCASE("member: absent and null alike") {
    const Json j = Json::parse(R"({"a": 1, "n": null})");
    REQUIRE(member(j, "a") != nullptr);
    CHECK(*member(j, "a") == 1);
    CHECK(member(j, "n") == nullptr);
    CHECK(member(j, "z") == nullptr);
  }
  SUBCASE("required_string") {
    const Json j = Json::parse(R"({"id": "i1", "n": null, "num": 5})");
    CHECK(required_string(j, "headers", "id").value() == "i1");
    CHECK(error_of(required_string(j, "headers", "n")) == "celery message: headers.n is missing");
    CHECK(error_of(required_string(j, "headers", "z")) == "celery message: headers.z is missing");
    CHECK(error_of(required_string(j, "headers", "num")) ==
          "celery message: headers.num must be a string, got number 5");
  }
}

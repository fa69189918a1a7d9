#include "util/json_skim.hpp"

#include <doctest/doctest.h>
#include <string>
#include <utility>
#include <vector>

namespace {

using Members = std::vector<std::pair<std::string, std::string>>;

// The members skimmed, or {{"(malformed)", ""}} when the skimmer says the text is malformed.
Members skim(std::string_view json) {
  Members out;
  bool ok = pss::for_each_top_level_member(json, [&](const pss::JsonMember& m) {
    out.emplace_back(std::string(m.key), std::string(m.value));
  });
  return ok ? out : Members{{"(malformed)", ""}};
}

const Members k_malformed = {{"(malformed)", ""}};

} // namespace

TEST_CASE("util::for_each_top_level_member") {
  SUBCASE("members in order, values as written") {
    CHECK(skim(R"({"a": 1, "b" :"x y" , "c":[1,{"d":2}],"e":{"f":[]},"g":null,"h":-1.5e3})") ==
          Members{{"a", "1"},
                  {"b", R"("x y")"},
                  {"c", R"([1,{"d":2}])"},
                  {"e", R"({"f":[]})"},
                  {"g", "null"},
                  {"h", "-1.5e3"}});
    CHECK(skim(" \t\r\n{ }\n") == Members{});
    CHECK(skim("{}") == Members{});
  }

  SUBCASE("keys inside nested values or strings are not top-level") {
    CHECK(skim(R"({"metadata": {"artifact_uri": "data:,no"}, "artifact_uri": "data:,yes"})") ==
          Members{{"metadata", R"({"artifact_uri": "data:,no"})"},
                  {"artifact_uri", R"("data:,yes")"}});
    CHECK(skim(R"({"note": "\"artifact_uri\": \"data:,no\"", "x": ["}", "]", "{"]})") ==
          Members{{"note", R"("\"artifact_uri\": \"data:,no\"")"}, {"x", R"(["}", "]", "{"])"}});
    CHECK(skim(R"({"a": "back\\", "b": 2})") == Members{{"a", R"("back\\")"}, {"b", "2"}});
  }

  SUBCASE("keys are given as written, duplicates included") {
    CHECK(skim(R"({"k": 1, "k": 2, "a\u0062": 3, "é": 4})") ==
          Members{{"k", "1"}, {"k", "2"}, {R"(a\u0062)", "3"}, {"é", "4"}});
  }

  SUBCASE("deep nesting needs no memory of its own") {
    std::string deep = R"({"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto m = skim(deep);
    REQUIRE(m.size() == 1);
    CHECK(m[0].second.size() == 200000);
  }

  SUBCASE("malformed texts") {
    for (const char* text : {
             "",
             "[]",
             "\"a\"",
             "{",
             R"({"a")",
             R"({"a" 1})",
             R"({"a": })",
             R"({"a": 1,})",
             R"({"a": 1 "b": 2})",
             R"({"a": "unterminated})",
             R"({"a": [1, 2})",
             R"({"a": {"b": 1})",
             R"({"a": 1}})",
             R"({"a": 1} x)",
             R"({a: 1})",
             R"({"a": 1}{"b": 2})",
         }) {
      CAPTURE(text);
      CHECK(skim(text) == k_malformed);
    }
  }
}

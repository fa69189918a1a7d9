// The manifest's "icap" section: defaults, every shipped manifest, and errors that name the field.
#include "engine/icap/spec.hpp"
#include "engine/manifest.hpp"
#include "env/engine_env.hpp"
#include "unit/samples.hpp"

#include <doctest/doctest.h>
#include <filesystem>

using namespace pss;
using namespace pss::engine::icap;
using nlohmann::json;

namespace {

const std::filesystem::path k_engines =
    pss::test::samples_dir().parent_path().parent_path() / "engines";

json minimal() {
  return json{{"url", "${ICAP_URL}"}, {"threats", json::array({{{"header", "X-Virus-ID"}}})}};
}

std::string error_of(const json& j) {
  auto s = parse_spec(j, "engines/x/engine.json");
  REQUIRE_FALSE(s.has_value());
  return s.error().message;
}

} // namespace

TEST_CASE("icap spec: defaults") {
  auto s = parse_spec(minimal(), "x");
  REQUIRE(s.has_value());
  CHECK(s->url == "${ICAP_URL}");
  CHECK(s->timeout == std::chrono::seconds(120));
  CHECK(s->max_size == 100u << 20);
  CHECK(s->max_connections == "8");
  CHECK(s->preview);
  CHECK(s->blocked == model::Verdict::unknown);
  REQUIRE(s->threats.size() == 1);
  CHECK(s->threats[0].in_icap);
  CHECK_FALSE(s->threats[0].in_http);
  CHECK_FALSE(s->threats[0].fallback);
  CHECK_FALSE(s->version);
}

TEST_CASE("icap spec: every shipped icap manifest parses") {
  int seen = 0;
  for (const auto& dir : std::filesystem::directory_iterator(k_engines)) {
    if (!std::filesystem::exists(dir.path() / "engine.json")) {
      continue;
    }
    auto m = engine::load_manifest(dir.path());
    REQUIRE_MESSAGE(m.has_value(), dir.path().native());
    if (m->driver != "icap") {
      continue;
    }
    CAPTURE(dir.path().native());
    ++seen;
    auto s = parse_spec(m->raw["icap"], dir.path().native());
    REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
    if (m->daemon) { // its own server, on the port picked for each start
      CHECK(s->url.find("{port}") != std::string::npos);
    } else {
      CHECK(s->url == "${" + env::env_prefix(m->name) + "_URL}");
    }
    CHECK(std::filesystem::exists(dir.path() / "README.md"));
  }
  CHECK(seen >= 9); // the generic one, c-icap run by us, and seven products
}

TEST_CASE("icap spec: errors name the field") {
  struct Case {
    json j;
    std::string error;
  };
  auto with = [](const char* key, json value) {
    json j = minimal();
    j[key] = std::move(value);
    return j;
  };
  auto threat = [](json t) {
    json j = minimal();
    j["threats"] = json::array({std::move(t)});
    return j;
  };
  const Case cases[] = {
      {json::array(), "field 'icap' must be an object"},
      {json{{"threats", minimal()["threats"]}}, "field 'icap.url' is missing"},
      {with("url", ""), "field 'icap.url' is empty"},
      {with("url", 5), "field 'icap.url' must be a string"},
      {with("timeout", -1), "field 'icap.timeout' must be a positive number"},
      {with("max_size", "lots"), "field 'icap.max_size' must be bytes or a size"},
      {with("max_connections", "0"), "field 'icap.max_connections' must be a number from 1 to"},
      {with("max_connections", 5000), "field 'icap.max_connections' must be a number from 1 to"},
      {with("preview", "yes"), "field 'icap.preview' must be true or false"},
      {with("threats", json::array()), "field 'icap.threats' must list the headers"},
      {threat({{"name", "x"}}), "field 'icap.threats[0].header' is missing"},
      {threat({{"header", "X Virus"}}), "field 'icap.threats[0].header' must be a header name"},
      {threat({{"header", "X-Virus-ID"}, {"name", "(unclosed"}}),
       "field 'icap.threats[0].name' is not a valid regex"},
      {threat({{"header", "X-Infection-Found"}, {"type", "Type=\\d+"}}),
       "field 'icap.threats[0].type' needs a group"},
      {threat({{"header", "X-Virus-ID"}, {"in", json::array({"trailer"})}}),
       "field 'icap.threats[0].in' must hold \"icap\", \"http\" or \"body\""},
      {threat({{"header", "X-Virus-ID"}, {"colour", "red"}}),
       "field 'icap.threats[0].colour' is not a field of a threat header"},
      {with("clean", "none"), "field 'icap.clean' must be an array of strings"},
      {with("suspicious_prefixes", json::array({""})),
       "field 'icap.suspicious_prefixes' must not hold an empty prefix"},
      {with("blocked", "benign"), "field 'icap.blocked' must be unknown, suspicious or malicious"},
      {with("version", json{{"regex", "x"}}), "field 'icap.version.header' is missing"},
      {with("version", json{{"header", "Service"}, {"regex", "(("}}),
       "field 'icap.version.regex' is not a valid regex"},
      {with("request_headers", json{{"X-Client-IP", "1\r\nEvil: 1"}}),
       "field 'icap.request_headers.X-Client-IP' must be a string on one line"},
      {with("uri", "x"), "field 'icap.uri' is not a field of the icap section"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.j.dump());
    auto e = error_of(c.j);
    CHECK(e.find("engines/x/engine.json: ") == 0);
    CHECK_MESSAGE(e.find(c.error) != std::string::npos, e);
  }
}

TEST_CASE("icap spec: in and fallback") {
  json j = minimal();
  j["http_headers"] = true;
  j["threats"] = json::array({{{"header", "X-Infection-Found"}},
                              {{"header", "X-Virus-ID"}, {"in", {"body"}}, {"fallback", true}}});
  auto s = parse_spec(j, "x");
  REQUIRE(s.has_value());
  CHECK(s->threats[0].in_icap);
  CHECK(s->threats[0].in_http); // http_headers is the default of "in"
  CHECK_FALSE(s->threats[1].in_icap);
  CHECK_FALSE(s->threats[1].in_http);
  CHECK(s->threats[1].in_body);
  CHECK(s->threats[1].fallback);
  CHECK(parse_max_connections("12").value() == 12);
  CHECK_FALSE(parse_max_connections("12x").has_value());
}

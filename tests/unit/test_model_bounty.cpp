#include "model/bounty.hpp"
#include "unit/support.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::model;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

pss::Result<Bounty> from(std::string_view text) {
  return bounty_from_json(json::parse(text));
}

// A minimal bounty with one extra member.
pss::Result<Bounty> with(std::string_view member) {
  return from(std::string(R"({"artifact_uri": "file:///tmp/a", )") + std::string(member) + "}");
}

// A minimal bounty with these rules.
pss::Result<Bounty> rules(std::string_view members) {
  return with(std::string(R"("rules": {)") + std::string(members) + "}");
}

std::chrono::system_clock::time_point utc(std::chrono::year_month_day d, std::chrono::hours h,
                                          std::chrono::minutes m = 0min,
                                          std::chrono::seconds s = 0s) {
  return std::chrono::sys_days(d) + h + m + s;
}

constexpr auto may1 = std::chrono::year(2024) / std::chrono::May / std::chrono::day(1);

} // namespace

TEST_CASE("model::bounty") {
  SUBCASE("defaults") {
    const auto b = from(R"({"artifact_uri": "file:///tmp/a"})");
    REQUIRE(b.has_value());
    CHECK(b->id == 0);
    CHECK(b->artifact_type == ArtifactType::file);
    CHECK(b->artifact_uri == "file:///tmp/a");
    CHECK_FALSE(b->sha256.has_value());
    CHECK_FALSE(b->mimetype.has_value());
    CHECK_FALSE(b->expiration.has_value());
    CHECK(b->phase == Phase::assertion);
    CHECK_FALSE(b->response_url.has_value());
    CHECK(b->rules.min_allowed_bid == 62'500'000'000'000'000ULL);
    CHECK(b->rules.max_allowed_bid == 999'900'000'000'000'000ULL);
    CHECK(b->metadata.is_null());
  }
  SUBCASE("every field") {
    const auto b = from(R"({
      "id": 123456789012, "artifact_type": "url", "artifact_uri": "https://example.com/x",
      "sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
      "mimetype": "text/html", "expiration": "2024-05-01T12:00:00Z", "phase": "arbitration",
      "response_url": "http://127.0.0.1:9/r",
      "rules": {"min_allowed_bid": 1000, "max_allowed_bid": 2000},
      "metadata": {"k": [1, 2]}, "unknown_field": "ignored"})");
    REQUIRE(b.has_value());
    CHECK(b->id == 123456789012ULL);
    CHECK(b->artifact_type == ArtifactType::url);
    CHECK(b->artifact_uri == "https://example.com/x");
    CHECK(b->sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(b->mimetype == "text/html");
    CHECK(b->expiration == utc(may1, 12h));
    CHECK(b->phase == Phase::arbitration);
    CHECK(b->response_url == "http://127.0.0.1:9/r");
    CHECK(b->rules.min_allowed_bid == 1000);
    CHECK(b->rules.max_allowed_bid == 2000);
    CHECK(b->metadata == json{{"k", {1, 2}}});
  }
  SUBCASE("older names: guid and artifact_url; ids as numeric strings") {
    const auto b = from(R"({"guid": "42", "artifact_url": "file:///tmp/old"})");
    REQUIRE(b.has_value());
    CHECK(b->id == 42);
    CHECK(b->artifact_uri == "file:///tmp/old");
    const auto both = from(R"({"id": 7, "guid": 8, "artifact_uri": "a", "artifact_url": "b"})");
    REQUIRE(both.has_value());
    CHECK(both->id == 7);
    CHECK(both->artifact_uri == "a");
    const auto big = with(R"("id": "18446744073709551615")");
    REQUIRE(big.has_value());
    CHECK(big->id == 18446744073709551615ULL);
  }
  SUBCASE("artifact_type and phase in either case") {
    const auto u = with(R"("artifact_type": "URL", "phase": "Arbitration")");
    REQUIRE(u.has_value());
    CHECK(u->artifact_type == ArtifactType::url);
    CHECK(u->phase == Phase::arbitration);
    const auto f = with(R"("artifact_type": "File", "phase": "ASSERTION")");
    REQUIRE(f.has_value());
    CHECK(f->artifact_type == ArtifactType::file);
    CHECK(f->phase == Phase::assertion);
  }
  SUBCASE("bids as integers, decimal strings and floats") {
    const auto s = rules(R"("min_allowed_bid": "62500000000000000", "max_allowed_bid": "6.25e16")");
    REQUIRE(s.has_value());
    CHECK(s->rules.min_allowed_bid == 62'500'000'000'000'000ULL);
    CHECK(s->rules.max_allowed_bid == 62'500'000'000'000'000ULL);
    const auto f = rules(R"("min_allowed_bid": 6.25e16, "max_allowed_bid": "0.9999e18")");
    REQUIRE(f.has_value());
    CHECK(f->rules.min_allowed_bid == 62'500'000'000'000'000ULL);
    CHECK(f->rules.max_allowed_bid == 999'900'000'000'000'000ULL);
    const auto e = rules(R"("min_allowed_bid": "1E3", "max_allowed_bid": "18446744073709551615")");
    REQUIRE(e.has_value());
    CHECK(e->rules.min_allowed_bid == 1000);
    CHECK(e->rules.max_allowed_bid == 18446744073709551615ULL);
    const auto z = rules(R"("min_allowed_bid": "0.0", "max_allowed_bid": "12.50e1")");
    REQUIRE(z.has_value());
    CHECK(z->rules.min_allowed_bid == 0);
    CHECK(z->rules.max_allowed_bid == 125);
    const auto one = rules(R"("max_allowed_bid": 5000)");
    REQUIRE(one.has_value());
    CHECK(one->rules.min_allowed_bid == k_default_min_bid);
    CHECK(one->rules.max_allowed_bid == 5000);
  }
}

TEST_CASE("model::bounty expiration") {
  SUBCASE("every accepted form") {
    const std::pair<const char*, std::chrono::system_clock::time_point> forms[] = {
        {"2024-05-01T12:00:00Z", utc(may1, 12h)},
        {"2024-05-01T12:00:00z", utc(may1, 12h)},
        {"2024-05-01T12:00:00", utc(may1, 12h)}, // no offset: UTC
        {"2024-05-01T12:00:00+02:00", utc(may1, 10h)},
        {"2024-05-01T12:00:00+0200", utc(may1, 10h)},
        {"2024-05-01T12:00:00+02", utc(may1, 10h)},
        {"2024-05-01T12:00:00-05:30", utc(may1, 17h, 30min)},
        {"2024-05-01T12:00:00-0530", utc(may1, 17h, 30min)},
        {"2024-05-01T12:00:00.5Z", utc(may1, 12h) + 500ms},
        {"2024-05-01T12:00:00.123456+00:00", utc(may1, 12h) + 123456us},
        {"2024-05-01 12:00:00Z", utc(may1, 12h)},
        {"2024-05-01T12:00Z", utc(may1, 12h)},
        {"2024-05-01T00:30:00+01:00", utc(may1, -1h, 30min)}, // previous day
    };
    for (const auto& [text, expected] : forms) {
      const std::string text_{text}; // doctest shows a const char* as a pointer
      CAPTURE(text_);
      const auto t = parse_iso8601(text);
      REQUIRE_MESSAGE(t.has_value(), error_of(t));
      CHECK(*t == expected);
      const auto b = with(std::string(R"("expiration": ")") + text + "\"");
      REQUIRE_MESSAGE(b.has_value(), error_of(b));
      CHECK(b->expiration == expected);
    }
  }
  SUBCASE("formatting: UTC, whole seconds, Z") {
    CHECK(format_iso8601(utc(may1, 12h)) == "2024-05-01T12:00:00Z");
    CHECK(format_iso8601(utc(may1, 17h, 30min, 5s) + 999ms) == "2024-05-01T17:30:05Z");
    CHECK(format_iso8601(std::chrono::system_clock::time_point{}) == "1970-01-01T00:00:00Z");
    const auto t = parse_iso8601("2024-02-29T23:59:59-01:00");
    REQUIRE(t.has_value());
    CHECK(format_iso8601(*t) == "2024-03-01T00:59:59Z");
  }
  SUBCASE("invalid times are errors naming the field") {
    for (const char* bad :
         {"", "yesterday", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-01T24:00:00Z",
          "2024-05-01T12:60:00Z", "2024-05-01", "2024-05-01T12:00:00+2",
          "2024-05-01T12:00:00+02:", "2024-05-01T12:00:00+25:00", "2024-05-01T12:00:00Zjunk",
          "2024-05-01T12:00:00.Z", "9999-12-31T23:59:59Z"}) {
      const std::string bad_text = bad;
      CAPTURE(bad_text);
      CHECK_FALSE(parse_iso8601(bad).has_value());
      const auto b = with(std::string(R"("expiration": ")") + bad + "\"");
      if (bad_text.empty()) { // an empty string field means "not given", as for every field
        REQUIRE(b.has_value());
        CHECK_FALSE(b->expiration.has_value());
        continue;
      }
      REQUIRE_FALSE(b.has_value());
      CHECK(error_of(b).find("expiration") != std::string::npos);
    }
    const auto number = with(R"("expiration": 1714564800)");
    REQUIRE_FALSE(number.has_value());
    CHECK(error_of(number).find("expiration") != std::string::npos);
  }
}

TEST_CASE("model::bounty errors") {
  SUBCASE("each bad field yields an Error naming it") {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"artifact_uri": "a", "id": {"x": 1}})", "id"},
        {R"({"artifact_uri": "a", "id": -1})", "id"},
        {R"({"artifact_uri": "a", "id": 1.5})", "id"},
        {R"({"artifact_uri": "a", "id": "abc"})", "id"},
        {R"({"artifact_uri": "a", "id": "18446744073709551616"})", "id"},
        {R"({"artifact_uri": "a", "guid": "0b2c-uuid"})", "guid"},
        {R"({"artifact_uri": "a", "artifact_type": "blob"})", "artifact_type"},
        {R"({"artifact_uri": "a", "artifact_type": 5})", "artifact_type"},
        {R"({"id": 1})", "artifact_uri"},
        {R"({"artifact_uri": 5})", "artifact_uri"},
        {R"({"artifact_uri": ""})", "artifact_uri"},
        {R"({"artifact_url": ["x"]})", "artifact_url"},
        {R"({"artifact_uri": "a", "sha256": "xyz"})", "sha256"},
        {R"({"artifact_uri": "a", "sha256": 12})", "sha256"},
        {R"({"artifact_uri": "a", "mimetype": 5})", "mimetype"},
        {R"({"artifact_uri": "a", "phase": "voting"})", "phase"},
        {R"({"artifact_uri": "a", "phase": true})", "phase"},
        {R"({"artifact_uri": "a", "response_url": true})", "response_url"},
        {R"({"artifact_uri": "a", "rules": [1, 2]})", "rules"},
        {R"({"artifact_uri": "a", "rules": {"min_allowed_bid": -1}})", "rules.min_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"min_allowed_bid": "-5"}})", "rules.min_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"min_allowed_bid": -6.25e16}})",
         "rules.min_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": "1.5"}})", "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": 0.5}})", "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": 1e20}})", "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": "18446744073709551616"}})",
         "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": "1e400"}})",
         "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": "abc"}})", "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": "1e"}})", "rules.max_allowed_bid"},
        {R"({"artifact_uri": "a", "rules": {"max_allowed_bid": true}})", "rules.max_allowed_bid"},
    };
    for (const auto& [text, field] : cases) {
      const std::string text_{text}; // doctest shows a const char* as a pointer
      CAPTURE(text_);
      const auto b = from(text);
      REQUIRE_FALSE(b.has_value());
      CHECK(error_of(b).find(std::string("'") + field + "'") != std::string::npos);
    }
  }
  SUBCASE("a bounty must be an object") {
    CHECK(error_of(bounty_from_json(json::array())).find("object") != std::string::npos);
    CHECK_FALSE(bounty_from_json(json("file:///tmp/a")).has_value());
  }
  SUBCASE("parse_bounty: JSON text, syntax errors reported") {
    const auto ok = parse_bounty(R"({"id": 3, "artifact_uri": "file:///x"})");
    REQUIRE(ok.has_value());
    CHECK(ok->id == 3);
    const auto bad = parse_bounty(R"({"id": 3, "artifact_uri": )");
    REQUIRE_FALSE(bad.has_value());
    CHECK(error_of(bad).find("invalid JSON") != std::string::npos);
    CHECK_FALSE(parse_bounty("").has_value());
    CHECK_FALSE(parse_bounty("[1]").has_value());
  }
}

TEST_CASE("model::bounty to_json") {
  SUBCASE("a minimal bounty: canonical names, in order, optionals left out") {
    Bounty b;
    b.id = 5;
    b.artifact_uri = "file:///tmp/a";
    CHECK(to_json(b).dump() ==
          R"({"id":5,"artifact_type":"file","artifact_uri":"file:///tmp/a","phase":"assertion",)"
          R"("rules":{"min_allowed_bid":62500000000000000,"max_allowed_bid":999900000000000000}})");
  }
  SUBCASE("a full bounty round-trips") {
    Bounty b;
    b.id = (std::uint64_t{1} << 60) - 1;
    b.artifact_type = ArtifactType::url;
    b.artifact_uri = "https://example.com/";
    b.sha256 = std::string(64, 'a');
    b.mimetype = "text/html";
    b.expiration = utc(may1, 12h, 0min, 30s);
    b.phase = Phase::arbitration;
    b.response_url = "http://127.0.0.1:9/";
    b.rules = {1, 18446744073709551615ULL};
    b.metadata = json{{"source", "test"}};
    const auto j = to_json(b);
    CHECK(j["artifact_type"] == "url");
    CHECK(j["expiration"] == "2024-05-01T12:00:30Z");
    CHECK(j["phase"] == "arbitration");
    CHECK(j["rules"]["max_allowed_bid"].is_number_unsigned());
    CHECK(j["metadata"]["source"] == "test");
    const auto back = bounty_from_json(j);
    REQUIRE_MESSAGE(back.has_value(), error_of(back));
    CHECK(back->id == b.id);
    CHECK(back->artifact_type == b.artifact_type);
    CHECK(back->artifact_uri == b.artifact_uri);
    CHECK(back->sha256 == b.sha256);
    CHECK(back->mimetype == b.mimetype);
    CHECK(back->expiration == b.expiration);
    CHECK(back->phase == b.phase);
    CHECK(back->response_url == b.response_url);
    CHECK(back->rules.min_allowed_bid == b.rules.min_allowed_bid);
    CHECK(back->rules.max_allowed_bid == b.rules.max_allowed_bid);
    CHECK(back->metadata == b.metadata);
    CHECK(to_json(*back) == j);
  }
  SUBCASE("old names in, canonical names out") {
    const auto b = from(R"({"guid": "9", "artifact_url": "file:///o", "artifact_type": "FILE"})");
    REQUIRE(b.has_value());
    const auto j = to_json(*b);
    CHECK(j["id"] == 9);
    CHECK(j["artifact_uri"] == "file:///o");
    CHECK(j["artifact_type"] == "file");
    CHECK_FALSE(j.contains("guid"));
    CHECK_FALSE(j.contains("artifact_url"));
    CHECK_FALSE(j.contains("metadata"));
    CHECK_FALSE(j.contains("expiration"));
  }
}

TEST_CASE("model::bounty local_bounty_id") {
  const std::string empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  SUBCASE("the first 60 bits of the sha256") {
    CHECK(local_bounty_id(empty_sha) == 0xe3b0c44298fc1c1ULL);
    CHECK(local_bounty_id("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855") ==
          0xe3b0c44298fc1c1ULL);
    CHECK(local_bounty_id(std::string(64, 'f')) == (std::uint64_t{1} << 60) - 1);
  }
  SUBCASE("not hex: a deterministic 60-bit hash") {
    const auto a = local_bounty_id("not a digest");
    CHECK(a == local_bounty_id("not a digest"));
    CHECK(a < (std::uint64_t{1} << 60));
    CHECK(a != local_bounty_id("not a digest!"));
    CHECK(local_bounty_id("abc") < (std::uint64_t{1} << 60));
  }
}

TEST_CASE("model::bounty with a NUL byte after its JSON is refused") {
  std::string text = R"({"id": 1, "artifact_type": "file", "artifact_uri": "file:///x"})";
  REQUIRE(pss::model::parse_bounty(text).has_value());
  text += std::string("\0junk", 5);
  const auto b = pss::model::parse_bounty(text);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().message.find("a NUL byte at offset") != std::string::npos);
}

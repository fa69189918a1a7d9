#include "model/analysis.hpp"
#include "unit/support.hpp"

#include <doctest/doctest.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::model;
using nlohmann::json;

namespace {

Analysis eicar() {
  Analysis a;
  a.result = Verdict::malicious;
  a.result_name = "Eicar-Test-Signature";
  a.product = "ClamAV";
  a.vendor = "Cisco Talos";
  a.analysis_engine_version = "1.4.6";
  a.analysis_definition_version = "27000";
  return a;
}

Bounty bounty(Phase phase = Phase::assertion, BidRules rules = {}) {
  Bounty b;
  b.artifact_uri = "file:///tmp/eicar.com";
  b.phase = phase;
  b.rules = rules;
  return b;
}

} // namespace

TEST_CASE("model::analysis finalize") {
  SUBCASE("malicious and benign bid by confidence within the bounty's rules") {
    Analysis a = eicar();
    finalize(a, bounty());
    REQUIRE(a.bid.has_value());
    CHECK(*a.bid == 999'900'000'000'000'000ULL);

    a.result = Verdict::benign;
    a.confidence = 0.0;
    finalize(a, bounty());
    CHECK(a.bid == 62'500'000'000'000'000ULL);

    a.confidence = 0.5;
    finalize(a, bounty(Phase::assertion, {1000, 3000}));
    CHECK(a.bid == 2000);
  }
  SUBCASE("suspicious and unknown bid 0") {
    Analysis a = eicar();
    a.result = Verdict::suspicious;
    finalize(a, bounty());
    CHECK(a.bid == 0);
    Analysis u = Analysis::unknown_because("timeout");
    finalize(u, bounty());
    CHECK(u.bid == 0);
  }
  SUBCASE("arbitration: no bid") {
    Analysis a = eicar();
    a.bid = 5;
    finalize(a, bounty(Phase::arbitration));
    CHECK_FALSE(a.bid.has_value());
  }
  SUBCASE("unknown_because keeps the reason and the comment") {
    const auto a =
        Analysis::unknown_because("cannot fetch: 404", std::string(k_skipped_cannot_fetch));
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == "cannot fetch: 404");
    CHECK(a.comments == "SKIPPED:CANNOT-FETCH");
    CHECK_FALSE(Analysis::unknown_because("x").comments.has_value());
  }
}

TEST_CASE("model::analysis to_json") {
  SUBCASE("the seed's layout, in its order") {
    Analysis a = eicar();
    finalize(a, bounty());
    CHECK(to_json(a).dump() ==
          R"({"bid":999900000000000000,"result":"malicious","result_name":"Eicar-Test-Signature",)"
          R"("product":"ClamAV","vendor":"Cisco Talos","analysis_engine_version":"1.4.6",)"
          R"("analysis_definition_version":"27000"})");
  }
  SUBCASE("absent optionals are left out; comments and error when set") {
    const auto a = Analysis::unknown_because("timeout after 30 s", std::string(k_skipped));
    CHECK(to_json(a).dump() ==
          R"({"result":"unknown","product":"","vendor":"","comments":"SKIPPED",)"
          R"("error":"timeout after 30 s"})");
  }
  SUBCASE("confidence when not 1, metadata when not empty, after the versions") {
    Analysis a = eicar();
    a.confidence = 0.25;
    a.metadata = json{{"heuristic", true}};
    finalize(a, bounty(Phase::assertion, {0, 100}));
    const auto j = to_json(a);
    CHECK(j.dump() ==
          R"({"bid":25,"result":"malicious","result_name":"Eicar-Test-Signature",)"
          R"("product":"ClamAV","vendor":"Cisco Talos","analysis_engine_version":"1.4.6",)"
          R"("analysis_definition_version":"27000","confidence":0.25,)"
          R"("metadata":{"heuristic":true}})");
  }
  SUBCASE("round trip") {
    Analysis a = eicar();
    a.confidence = 0.7;
    a.comments = "note";
    a.error = "partial";
    a.metadata = json{{"k", {1, 2}}};
    finalize(a, bounty());
    const auto back = analysis_from_json(to_json(a));
    REQUIRE_MESSAGE(back.has_value(), error_of(back));
    CHECK(back->result == a.result);
    CHECK(back->confidence == a.confidence);
    CHECK(back->bid == a.bid);
    CHECK(back->result_name == a.result_name);
    CHECK(back->product == a.product);
    CHECK(back->vendor == a.vendor);
    CHECK(back->analysis_engine_version == a.analysis_engine_version);
    CHECK(back->analysis_definition_version == a.analysis_definition_version);
    CHECK(back->comments == a.comments);
    CHECK(back->error == a.error);
    CHECK(back->metadata == a.metadata);
    CHECK(to_json(*back) == to_json(a));
  }
  SUBCASE("from JSON: defaults and lenient forms") {
    const auto a = analysis_from_json(json::parse(R"({"result": "BENIGN", "bid": "1000"})"));
    REQUIRE_MESSAGE(a.has_value(), error_of(a));
    CHECK(a->result == Verdict::benign);
    CHECK(a->bid == 1000);
    CHECK(a->confidence == 1.0);
    CHECK(a->product.empty());
    CHECK_FALSE(a->result_name.has_value());
    CHECK(a->metadata == json::object());
  }
  SUBCASE("from JSON: each bad field yields an Error naming it") {
    const std::pair<const char*, const char*> cases[] = {
        {R"({})", "result"},
        {R"({"result": "evil"})", "result"},
        {R"({"result": 1})", "result"},
        {R"({"result": "benign", "bid": -1})", "bid"},
        {R"({"result": "benign", "bid": "lots"})", "bid"},
        {R"({"result": "benign", "confidence": "high"})", "confidence"},
        {R"({"result": "benign", "confidence": 1.5})", "confidence"},
        {R"({"result": "benign", "confidence": -0.1})", "confidence"},
        {R"({"result": "benign", "result_name": 3})", "result_name"},
        {R"({"result": "benign", "product": ["x"]})", "product"},
        {R"({"result": "benign", "vendor": false})", "vendor"},
        {R"({"result": "benign", "analysis_engine_version": 1.4})", "analysis_engine_version"},
        {R"({"result": "benign", "analysis_definition_version": 27000})",
         "analysis_definition_version"},
        {R"({"result": "benign", "comments": ["SKIPPED"]})", "comments"},
        {R"({"result": "benign", "error": {}})", "error"},
        {R"({"result": "benign", "metadata": [1]})", "metadata"},
    };
    for (const auto& [text, field] : cases) {
      const std::string text_{text}; // doctest shows a const char* as a pointer
      CAPTURE(text_);
      const auto a = analysis_from_json(json::parse(text));
      REQUIRE_FALSE(a.has_value());
      CHECK(error_of(a).find(std::string("'") + field + "'") != std::string::npos);
    }
    CHECK_FALSE(analysis_from_json(json::array()).has_value());
  }
}

TEST_CASE("model::analysis to_polyswarm") {
  SUBCASE("assertion") {
    Analysis a = eicar();
    a.confidence = 0.5;
    finalize(a, bounty(Phase::assertion, {0, 10}));
    const auto j = to_polyswarm(a, Phase::assertion);
    CHECK(j["verdict"] == "malicious");
    CHECK(j["bid"] == 5);
    CHECK(j["confidence"] == 0.5);
    const auto& m = j["metadata"];
    CHECK(m["malware_family"] == "Eicar-Test-Signature");
    CHECK(m["product"] == "ClamAV");
    CHECK_FALSE(m.contains("comments"));
    CHECK_FALSE(m.contains("error"));
    CHECK(m["scanner"]["version"] == "1.4.6");
    CHECK(m["scanner"]["vendor_version"] == "1.4.6");
    CHECK(m["scanner"]["signatures_version"] == "27000");
#if defined(__linux__)
    CHECK(m["scanner"]["environment"]["operating_system"] == "Linux");
#endif
#if defined(__x86_64__)
    CHECK(m["scanner"]["environment"]["architecture"] == "x86_64");
#endif
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) {
      keys.push_back(k);
    }
    CHECK(keys == std::vector<std::string>{"verdict", "bid", "confidence", "metadata"});
  }
  SUBCASE("a skip: unknown, bid 0, comments as a list, error, empty family") {
    Analysis a = Analysis::unknown_because("engine does not scan image/png",
                                           std::string(k_skipped_type_unsupported));
    finalize(a, bounty());
    const auto j = to_polyswarm(a, Phase::assertion);
    CHECK(j["verdict"] == "unknown");
    CHECK(j["bid"] == 0);
    CHECK(j["metadata"]["malware_family"] == "");
    CHECK(j["metadata"]["comments"].dump() == R"(["SKIPPED:TYPE-UNSUPPORTED"])");
    CHECK(j["metadata"]["error"] == "engine does not scan image/png");
    CHECK_FALSE(j["metadata"]["scanner"].contains("version"));
  }
  SUBCASE("arbitration: a vote, without bid") {
    Analysis a = eicar();
    a.result = Verdict::benign;
    finalize(a, bounty(Phase::arbitration));
    const auto j = to_polyswarm(a, Phase::arbitration);
    CHECK(j["verdict"] == "benign");
    CHECK_FALSE(j.contains("bid"));
    CHECK(j.contains("metadata"));
  }
  SUBCASE("an assertion not finalized bids with the default rules") {
    const auto j = to_polyswarm(eicar(), Phase::assertion);
    CHECK(j["bid"] == k_default_max_bid);
  }
}

// engine::analyze with a scripted engine: what it adds to the engine's answer, and when it does
// not ask the engine at all.
#include "engine/engine.hpp"
#include "unit/fake_engine.hpp"
#include "unit/samples.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>

using namespace pss;
using namespace std::chrono_literals;
using model::Verdict;
using pss::test::FakeEngine;
using pss::test::verdict;
namespace asio = boost::asio;

namespace {

const std::filesystem::path k_text = pss::test::samples_dir() / "hello.txt";

artifact::Artifact text_artifact(std::string mimetype = "text/plain") {
  artifact::Artifact a;
  a.name = "hello.txt";
  a.path = k_text;
  a.size = std::filesystem::file_size(k_text);
  a.sha256 = std::string(64, 'a'); // analyze only passes it on
  a.mimetype = std::move(mimetype);
  return a;
}

// Bids from 1000 to 2000 wei: a confidence c bids 1000 + 1000 c.
model::Bounty bounty(model::Phase phase = model::Phase::assertion) {
  model::Bounty b;
  b.artifact_uri = k_text.string();
  b.phase = phase;
  b.rules = {1000, 2000};
  return b;
}

engine::Clock::time_point in_a_minute() {
  return engine::Clock::now() + 1min;
}

// Runs analyze to its end on a fresh io_context; rethrows what it threw.
model::Analysis analyze(FakeEngine& e, const artifact::Artifact& art, const model::Bounty& b,
                        engine::Clock::time_point deadline) {
  asio::io_context io;
  std::optional<model::Analysis> out;
  std::exception_ptr thrown;
  asio::co_spawn(io, engine::analyze(e, art, b, deadline),
                 [&](std::exception_ptr ep, model::Analysis a) {
                   thrown = ep;
                   if (!ep) {
                     out = std::move(a);
                   }
                 });
  io.run();
  if (thrown) {
    std::rethrow_exception(thrown);
  }
  REQUIRE(out);
  return *out;
}

} // namespace

TEST_CASE("engine::analyze: the engine's answer, with what the manifest and the bounty add") {
  FakeEngine e("fake");
  e.manifest().malicious_confidence = 0.75;
  e.manifest().benign_confidence = 0.5;
  const auto art = text_artifact();

  SUBCASE("malicious: its name kept; product and vendor the manifest's, even over the engine's; "
          "the manifest's confidence and the bid it makes under the bounty's rules") {
    auto answer = verdict(Verdict::malicious, "Eicar-Test-Signature");
    answer.product = "what the driver said";
    answer.metadata["signature_db"] = "main.cvd";
    answer.comments = "heuristic";
    e.otherwise.answer = answer;
    const auto deadline = in_a_minute();
    const auto a = analyze(e, art, bounty(), deadline);
    CHECK(a.result == Verdict::malicious);
    CHECK(a.result_name == std::optional<std::string>("Eicar-Test-Signature"));
    CHECK(a.product == "fake product");
    CHECK(a.vendor == "fake vendor");
    CHECK(a.confidence == 0.75);
    CHECK(a.bid == std::optional<model::Wei>(1750));
    CHECK(a.metadata == nlohmann::json{{"signature_db", "main.cvd"}});
    CHECK(a.comments == std::optional<std::string>("heuristic"));
    CHECK_FALSE(a.error);
    // The engine saw the artifact and the deadline as given, once.
    REQUIRE(e.scans() == 1);
    CHECK(e.scans_of(k_text) == 1);
    CHECK(e.seen()[0].deadline == deadline);
    CHECK(e.seen()[0].mimetype == "text/plain");
    CHECK(e.seen()[0].sha256 == art.sha256);
  }
  SUBCASE("benign: the manifest's benign confidence") {
    const auto a = analyze(e, art, bounty(), in_a_minute()); // `otherwise` answers benign
    CHECK(a.result == Verdict::benign);
    CHECK(a.confidence == 0.5);
    CHECK(a.bid == std::optional<model::Wei>(1500));
  }
  SUBCASE("suspicious and unknown bid 0; the engine's confidence and error are kept") {
    auto suspicious = verdict(Verdict::suspicious, "Heur.Packed");
    suspicious.confidence = 0.3;
    e.otherwise.answer = suspicious;
    auto a = analyze(e, art, bounty(), in_a_minute());
    CHECK(a.result == Verdict::suspicious);
    CHECK(a.confidence == 0.3);
    CHECK(a.bid == std::optional<model::Wei>(0));

    e.otherwise.answer = model::Analysis::unknown_because("clamd: connection refused");
    a = analyze(e, art, bounty(), in_a_minute());
    CHECK(a.result == Verdict::unknown);
    CHECK(a.error == std::optional<std::string>("clamd: connection refused"));
    CHECK(a.bid == std::optional<model::Wei>(0));
    CHECK(a.product == "fake product");
  }
  SUBCASE("arbitration: a vote, without a bid") {
    e.otherwise.answer = verdict(Verdict::malicious, "X");
    const auto a = analyze(e, art, bounty(model::Phase::arbitration), in_a_minute());
    CHECK(a.result == Verdict::malicious);
    CHECK_FALSE(a.bid);
    CHECK(a.confidence == 0.75);
  }
  SUBCASE("a bounty with the default rules bids within the default range") {
    e.otherwise.answer = verdict(Verdict::malicious);
    e.manifest().malicious_confidence = 1.0;
    const auto a = analyze(e, art, model::Bounty{}, in_a_minute());
    CHECK(a.bid == std::optional<model::Wei>(model::k_default_max_bid));
  }
}

TEST_CASE("engine::analyze: versions") {
  FakeEngine e("fake");
  const auto art = text_artifact();
  SUBCASE("versions() fills in what the scan did not say") {
    e.engine_versions = {"1.4.6", "27000", ""};
    const auto a = analyze(e, art, bounty(), in_a_minute());
    CHECK(a.analysis_engine_version == std::optional<std::string>("1.4.6"));
    CHECK(a.analysis_definition_version == std::optional<std::string>("27000"));
  }
  SUBCASE("the scan's own versions win") {
    e.engine_versions = {"1.4.6", "27000", ""};
    auto answer = verdict(Verdict::benign);
    answer.analysis_engine_version = "1.4.7"; // updated since start
    e.otherwise.answer = answer;
    const auto a = analyze(e, art, bounty(), in_a_minute());
    CHECK(a.analysis_engine_version == std::optional<std::string>("1.4.7"));
    CHECK(a.analysis_definition_version == std::optional<std::string>("27000"));
  }
  SUBCASE("an engine without definitions leaves them absent") {
    e.engine_versions = {"2.0", std::nullopt, "custom signature database"};
    const auto a = analyze(e, art, bounty(), in_a_minute());
    CHECK(a.analysis_engine_version == std::optional<std::string>("2.0"));
    CHECK_FALSE(a.analysis_definition_version);
  }
}

TEST_CASE("engine::analyze: a type outside the engine's categories is skipped, never scanned") {
  FakeEngine pe_only("pe-only", {"pe"});
  pe_only.engine_versions = {"3.1", "99", ""};
  pe_only.otherwise.throws = "scanned what it does not scan"; // must not be reached
  SUBCASE("a known type") {
    const auto a = analyze(pe_only, text_artifact(), bounty(), in_a_minute());
    CHECK(pe_only.scans() == 0);
    CHECK(a.result == Verdict::unknown);
    CHECK(a.comments == std::optional<std::string>("SKIPPED:TYPE-UNSUPPORTED"));
    CHECK(a.metadata.value("skipped", "") == "pe-only does not scan text/plain");
    CHECK_FALSE(a.error); // a skip, not a failure
    CHECK(a.product == "pe-only product");
    CHECK(a.vendor == "pe-only vendor");
    CHECK(a.analysis_engine_version == std::optional<std::string>("3.1"));
    CHECK(a.analysis_definition_version == std::optional<std::string>("99"));
    CHECK(a.bid == std::optional<model::Wei>(0));
  }
  SUBCASE("an artifact not identified (no mimetype) for an engine that needs one") {
    const auto a = analyze(pe_only, text_artifact(""), bounty(), in_a_minute());
    CHECK(pe_only.scans() == 0);
    CHECK(a.comments == std::optional<std::string>("SKIPPED:TYPE-UNSUPPORTED"));
  }
  SUBCASE("a deadline already passed changes nothing: still a skip") {
    const auto a = analyze(pe_only, text_artifact(), bounty(), engine::Clock::now() - 1s);
    CHECK(pe_only.scans() == 0);
    CHECK(a.comments == std::optional<std::string>("SKIPPED:TYPE-UNSUPPORTED"));
  }
  SUBCASE("the categories that do cover it are scanned: by name with parameters, a parent "
          "category, or '*'") {
    FakeEngine text("text", {"pe", "text"});
    analyze(text, text_artifact("text/plain; charset=us-ascii"), bounty(), in_a_minute());
    CHECK(text.scans() == 1);
    FakeEngine office("office", {"office"});
    analyze(office, text_artifact("application/msword"), bounty(), in_a_minute());
    CHECK(office.scans() == 1);
    FakeEngine every("every", {"*"});
    analyze(every, text_artifact(""), bounty(), in_a_minute());
    CHECK(every.scans() == 1);
  }
}

TEST_CASE("engine::analyze: a deadline already passed is the engine's to judge") {
  // analyze neither answers for the engine nor moves the deadline: the driver gives up at
  // once with its own reason, which analyze completes as any other answer.
  FakeEngine e("fake");
  e.otherwise.answer = model::Analysis::unknown_because("scan timed out after 0 s");
  const auto passed = engine::Clock::now() - 1s;
  const auto a = analyze(e, text_artifact(), bounty(), passed);
  REQUIRE(e.scans() == 1);
  CHECK(e.seen()[0].deadline == passed);
  CHECK(a.result == Verdict::unknown);
  CHECK(a.error == std::optional<std::string>("scan timed out after 0 s"));
  CHECK(a.product == "fake product");
  CHECK(a.bid == std::optional<model::Wei>(0));
}

TEST_CASE("engine::analyze: an exception from the driver goes through to the caller") {
  // A driver bug, not a scan failure: the backend answers it (backend::LocalBackend turns it
  // into an `unknown` "internal error"), analyze does not hide it.
  FakeEngine e("fake");
  e.otherwise.throws = "driver bug";
  CHECK_THROWS_WITH_AS(analyze(e, text_artifact(), bounty(), in_a_minute()), "driver bug",
                       std::runtime_error);
  CHECK(e.scans() == 1);
}

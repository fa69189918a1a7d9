#include "backend/answers.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace pss;
using namespace pss::backend;

namespace {

const std::vector<EngineInfo> k_engines = {{"clamav", "ClamAV", "Cisco"},
                                           {"yara", "YARA", "VirusTotal"}};

} // namespace

TEST_CASE("a job without engines asks for every engine; one with engines, for those in order") {
  Job all;
  CHECK(engines_for(all, k_engines).size() == 2);
  Job one;
  one.engines = {"yara", "nosuch"};
  auto asked = engines_for(one, k_engines);
  REQUIRE(asked.size() == 2);
  CHECK(asked[0].name == "yara");
  CHECK(asked[0].product == "YARA");
  CHECK(asked[1].name == "nosuch"); // answered unknown, not dropped
  CHECK(asked[1].product.empty());
}

TEST_CASE("an unknown answer for each engine asked, with its product and vendor, and a bid") {
  Job job;
  job.index = 7;
  job.input = "/tmp/x";
  job.engines = {"clamav"};
  auto bounty = job_bounty(job);
  auto r = unknown_result(job, bounty, engines_for(job, k_engines), "boom",
                          model::k_skipped_cannot_fetch);
  CHECK(r.index == 7);
  CHECK(r.input == "/tmp/x");
  REQUIRE(r.analyses.size() == 1);
  const auto& a = r.analyses[0].analysis;
  CHECK(r.analyses[0].engine == "clamav");
  CHECK(a.result == model::Verdict::unknown);
  CHECK(a.error == std::optional<std::string>("boom"));
  CHECK(a.comments == std::optional<std::string>(std::string(model::k_skipped_cannot_fetch)));
  CHECK(a.product == "ClamAV");
  CHECK(a.vendor == "Cisco");
  CHECK(a.bid.has_value()); // finalized as a scan's answer is
}

TEST_CASE("a made-up bounty: URL artifacts are their own text; the id follows the bytes") {
  Job url;
  url.input = "http://example.test/a";
  url.artifact_type = model::ArtifactType::url;
  CHECK(job_source(url) == "data:,http://example.test/a");
  CHECK(job_bounty(url).artifact_uri == "http://example.test/a");

  Job file;
  file.input = "relative/name";
  auto b = job_bounty(file);
  auto id_from_name = b.id;
  artifact::Artifact art;
  art.path = "/abs/relative/name";
  art.sha256 = std::string(64, 'a');
  complete_local_bounty(b, file, art);
  CHECK(b.id != id_from_name);
  CHECK(b.id == model::local_bounty_id(art.sha256));
  CHECK(b.artifact_uri == "file:///abs/relative/name");

  Job given;
  given.bounty = model::Bounty{};
  given.bounty->artifact_uri = "https://example.test/x";
  given.bounty->id = 42;
  auto kept = job_bounty(given);
  complete_local_bounty(kept, given, art);
  CHECK(kept.id == 42); // a bounty given is never renamed
  CHECK(job_source(given) == "https://example.test/x");
}

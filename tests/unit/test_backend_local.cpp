#include "backend/local.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <filesystem>
#include <optional>
#include <string>

using namespace pss;
using namespace pss::backend;
namespace asio = boost::asio;

namespace {

const std::filesystem::path k_text = std::filesystem::path(PSS_TEST_SAMPLES) / "hello.txt";

// Answers benign without looking: what the backend hands it is the test's subject.
class StandInEngine final : public engine::Engine {
public:
  explicit StandInEngine(std::vector<std::string> categories) {
    m_manifest.name = "standin";
    m_manifest.categories = std::move(categories);
  }
  const engine::Manifest& manifest() const override { return m_manifest; }
  asio::awaitable<void> start() override { co_return; }
  asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                        engine::Clock::time_point) override {
    scanned_sha256 = artifact.sha256;
    model::Analysis a;
    a.result = model::Verdict::benign;
    co_return a;
  }
  asio::awaitable<void> stop() override { co_return; }
  engine::EngineVersions versions() const override { return {}; }

  std::string scanned_sha256;

private:
  engine::Manifest m_manifest;
};

JobResult run_one(LocalOptions opts, StandInEngine& engine, Job job) {
  asio::io_context io;
  LocalBackend backend(std::move(opts), {&engine});
  std::optional<JobResult> out;
  asio::co_spawn(io, backend.run_one(std::move(job)), [&](std::exception_ptr ep, JobResult r) {
    REQUIRE_FALSE(ep);
    out = std::move(r);
  });
  io.run();
  REQUIRE(out);
  return *out;
}

Job path_job() {
  Job job;
  job.input = k_text.string();
  return job;
}

Job spooled_job() { // a file the caller wrote (a spooled data: artifact), not hashed yet
  Job job;
  job.input = "bounty.json";
  job.fetched = FetchedArtifact{k_text, std::filesystem::file_size(k_text), "", "", nullptr};
  return job;
}

} // namespace

TEST_CASE("backend::LocalBackend identifies an artifact by default") {
  for (auto make : {&path_job, &spooled_job}) {
    CAPTURE(make().input);
    StandInEngine every({"*"});
    auto r = run_one({}, every, make());
    CHECK(r.bounty.mimetype.value_or("") == "text/plain");
    CHECK(r.bounty.sha256.value_or("").size() == 64);
  }
}

TEST_CASE("backend::LocalBackend with identify_only_if_needed: no libmagic when every engine "
          "scans every type, a spooled file included; hashed all the same") {
  for (auto make : {&path_job, &spooled_job}) {
    CAPTURE(make().input);
    StandInEngine every({"*"});
    LocalOptions opts;
    opts.identify_only_if_needed = true;
    auto r = run_one(opts, every, make());
    CHECK_FALSE(r.bounty.mimetype);
    CHECK(r.bounty.sha256.value_or("").size() == 64);
    CHECK(every.scanned_sha256 == r.bounty.sha256.value_or(""));
    REQUIRE(r.analyses.size() == 1);
    CHECK(r.analyses[0].analysis.result == model::Verdict::benign);
  }
}

TEST_CASE("backend::LocalBackend with identify_only_if_needed: identified when an engine scans "
          "only some types") {
  for (auto make : {&path_job, &spooled_job}) {
    CAPTURE(make().input);
    StandInEngine some({"pe"}); // never text: skipped, but only once its type is known
    LocalOptions opts;
    opts.identify_only_if_needed = true;
    auto r = run_one(opts, some, make());
    CHECK(r.bounty.mimetype.value_or("") == "text/plain");
  }
}

// The result cache around the local backend, with scripted engines that count their scans and
// a real SQLite store: what is answered from it, what is scanned again, what is never stored.
#include "backend/cached.hpp"
#include "backend/local.hpp"
#include "cache/sqlite_store.hpp"
#include "unit/fake_engine.hpp"
#include "util/sha256.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

using namespace pss;
using namespace pss::backend;
using model::Verdict;
using pss::test::FakeEngine;
using pss::test::verdict;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  TempDir dir = TempDir::create(temp_base_dir(), "pss-test-cached-").value();
  fs::path db = dir.path() / "results.sqlite";
  std::vector<fs::path> files;
  FakeEngine av{"av"};

  Fixture() {
    av.engine_versions = {"1.0", "defs-1", ""};
    av.on_content("evil", {verdict(Verdict::malicious, "Evil.A"), std::nullopt, false});
  }

  fs::path add(const std::string& bytes) {
    auto path = dir.path() / ("input-" + std::to_string(files.size()));
    std::ofstream(path, std::ios::binary) << bytes;
    files.push_back(path);
    return path;
  }

  LocalOptions local() const {
    LocalOptions o;
    o.fetch.temp_dir = dir.path();
    return o;
  }

  std::unique_ptr<CachedBackend> backend(std::vector<engine::Engine*> engines,
                                         CacheOptions co = {}) {
    auto store = cache::SqliteStore::open(db);
    REQUIRE(store.has_value());
    return std::make_unique<CachedBackend>(
        std::make_unique<LocalBackend>(local(), std::move(engines)), std::move(*store), co,
        local().fetch);
  }

  // Every file, one job each, through run(); results by index.
  std::map<std::size_t, JobResult> run(Backend& b) {
    std::vector<Job> jobs;
    for (std::size_t i = 0; i < files.size(); ++i) {
      Job j;
      j.index = i;
      j.input = files[i].string();
      jobs.push_back(std::move(j));
    }
    std::map<std::size_t, JobResult> out;
    asio::io_context io;
    asio::co_spawn(io,
                   b.run(std::move(jobs),
                         [&](JobResult r) {
                           CHECK(out.count(r.index) == 0);
                           out.emplace(r.index, std::move(r));
                         }),
                   [](std::exception_ptr ep) { REQUIRE_FALSE(ep); });
    io.run();
    CHECK(out.size() == files.size());
    return out;
  }

  JobResult run_one(Backend& b, Job job) {
    asio::io_context io;
    std::optional<JobResult> out;
    asio::co_spawn(io, b.run_one(std::move(job)), [&](std::exception_ptr ep, JobResult r) {
      REQUIRE_FALSE(ep);
      out = std::move(r);
    });
    io.run();
    REQUIRE(out.has_value());
    return *out;
  }
};

std::string verdicts(const std::map<std::size_t, JobResult>& results) {
  std::string out;
  for (const auto& [i, r] : results) {
    for (const auto& a : r.analyses) {
      out += std::to_string(i) + ":" + a.engine + "=" +
             std::string(model::to_string(a.analysis.result)) + "/" +
             a.analysis.result_name.value_or("-") + " ";
    }
  }
  return out;
}

CacheCount count_of(const CachedBackend& b, const std::string& engine) {
  for (const auto& c : b.counts()) {
    if (c.engine == engine) {
      return c;
    }
  }
  return {engine, 0, 0};
}

} // namespace

TEST_CASE("backend::CachedBackend: a second run of a corpus scans nothing, same verdicts") {
  Fixture f;
  f.add("evil");
  f.add("clean one");
  f.add("clean two");
  auto first = f.backend({&f.av});
  const auto a = f.run(*first);
  CHECK(f.av.scans() == 3);
  CHECK(count_of(*first, "av").misses == 3);
  first.reset();

  auto second = f.backend({&f.av});
  const auto b = f.run(*second);
  CHECK(f.av.scans() == 3); // none more
  CHECK(count_of(*second, "av").hits == 3);
  CHECK(verdicts(a) == verdicts(b));
  const auto& evil = b.at(0).analyses.at(0).analysis;
  CHECK(evil.result == Verdict::malicious);
  CHECK(evil.analysis_definition_version == "defs-1");
  CHECK(evil.metadata.contains("cached_at"));
  CHECK(evil.bid.has_value()); // recomputed for this bounty
  CHECK(b.at(0).bounty.sha256 == sha256_hex("evil"));
  CHECK(b.at(0).bounty.artifact_uri == a.at(0).bounty.artifact_uri);
  CHECK(b.at(0).bounty.id == a.at(0).bounty.id);
}

TEST_CASE("backend::CachedBackend: what is scanned again") {
  Fixture f;
  f.add("evil");
  {
    auto b = f.backend({&f.av});
    f.run(*b);
  }
  REQUIRE(f.av.scans() == 1);

  SUBCASE("--rescan: scanned, and the new answer stored") {
    auto b = f.backend({&f.av}, CacheOptions{"", std::chrono::hours(1), true});
    f.run(*b);
    CHECK(f.av.scans() == 2);
    CHECK(count_of(*b, "av").misses == 1);
  }
  SUBCASE("new definitions") {
    f.av.engine_versions.definitions = "defs-2";
    auto b = f.backend({&f.av});
    auto r = f.run(*b);
    CHECK(f.av.scans() == 2);
    CHECK(r.at(0).analyses.at(0).analysis.analysis_definition_version == "defs-2");
    b.reset(); // its last writes go out as it ends
    auto again = f.backend({&f.av});
    f.run(*again);
    CHECK(f.av.scans() == 2); // defs-2's answer was stored
  }
  SUBCASE("a new engine version") {
    f.av.engine_versions.engine = "1.1";
    auto b = f.backend({&f.av});
    f.run(*b);
    CHECK(f.av.scans() == 2);
  }
  SUBCASE("other settings (the manifest changed)") {
    f.av.manifest().scan_timeout = std::chrono::seconds(7);
    f.av.manifest().raw["scan_timeout"] = 7;
    auto b = f.backend({&f.av});
    f.run(*b);
    CHECK(f.av.scans() == 2);
  }
}

TEST_CASE("backend::CachedBackend: never stored") {
  Fixture f;
  SUBCASE("unknown answers") {
    f.av.otherwise = {model::Analysis::unknown_because("engine timed out"), std::nullopt, false};
    f.add("x");
    {
      auto b = f.backend({&f.av});
      f.run(*b);
    }
    auto b = f.backend({&f.av});
    f.run(*b);
    CHECK(f.av.scans() == 2);
  }
  SUBCASE("an engine without a definitions version: not looked up, not counted") {
    f.av.engine_versions.definitions.reset();
    f.add("x");
    {
      auto b = f.backend({&f.av});
      f.run(*b);
    }
    auto b = f.backend({&f.av});
    f.run(*b);
    CHECK(f.av.scans() == 2);
    CHECK(b->counts().empty());
  }
  SUBCASE("a file that cannot be read: the inner backend's answer, unknown") {
    Job j;
    j.input = (f.dir.path() / "missing").string();
    auto b = f.backend({&f.av});
    auto r = f.run_one(*b, j);
    REQUIRE(r.analyses.size() == 1);
    CHECK(r.analyses[0].analysis.result == Verdict::unknown);
    CHECK(r.analyses[0].analysis.error->find("missing") != std::string::npos);
    CHECK(f.av.scans() == 0);
  }
}

TEST_CASE("backend::CachedBackend: a bounty naming its sha256 is answered without a fetch") {
  Fixture f;
  const auto path = f.add("evil");
  {
    auto b = f.backend({&f.av});
    f.run(*b);
  }
  REQUIRE(f.av.scans() == 1);
  fs::remove(path); // a fetch would now fail
  model::Bounty bounty;
  bounty.artifact_uri = "file://" + path.string();
  bounty.sha256 = sha256_hex("evil");
  Job j;
  j.input = "bounty";
  j.bounty = bounty;
  auto b = f.backend({&f.av});
  auto r = f.run_one(*b, j);
  REQUIRE(r.analyses.size() == 1);
  CHECK(r.analyses[0].analysis.result == Verdict::malicious);
  CHECK(r.analyses[0].analysis.result_name == "Evil.A");
  CHECK(f.av.scans() == 1);
}

TEST_CASE("backend::CachedBackend: a partial hit scans only the engines that missed") {
  Fixture f;
  FakeEngine other("other");
  other.engine_versions = {"2.0", std::nullopt, ""}; // never cached
  f.add("evil");
  {
    auto b = f.backend({&f.av, &other});
    f.run(*b);
  }
  REQUIRE(f.av.scans() == 1);
  REQUIRE(other.scans() == 1);
  auto b = f.backend({&f.av, &other});
  auto r = f.run(*b);
  CHECK(f.av.scans() == 1);
  CHECK(other.scans() == 2);
  REQUIRE(r.at(0).analyses.size() == 2);
  CHECK(r.at(0).analyses[0].engine == "av"); // the job's order
  CHECK(r.at(0).analyses[1].engine == "other");
  CHECK(r.at(0).analyses[0].analysis.metadata.contains("cached_at"));
  CHECK_FALSE(r.at(0).analyses[1].analysis.metadata.contains("cached_at"));
}

// The local backend with scripted engines: what it hands them (identified or not), which jobs
// each engine scans, one result per job, its answers for jobs it cannot scan, cancel().
#include "backend/local.hpp"
#include "unit/fake_engine.hpp"
#include "unit/samples.hpp"
#include "util/sha256.hpp"
#include "util/temp_file.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using namespace pss;
using namespace pss::backend;
using namespace std::chrono_literals;
using model::Verdict;
using pss::test::FakeEngine;
namespace asio = boost::asio;

namespace {

const std::filesystem::path k_text = pss::test::samples_dir() / "hello.txt";

JobResult run_one(LocalOptions opts, std::vector<engine::Engine*> engines, Job job) {
  asio::io_context io;
  LocalBackend backend(std::move(opts), std::move(engines));
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

// Input files in a private temp dir, and options that fetch into it.
struct Inputs {
  TempDir dir = TempDir::create(temp_base_dir(), "pss-test-local-").value();
  std::vector<std::filesystem::path> files;

  // Adds a file with these bytes; returns its path.
  std::filesystem::path add(const std::string& bytes) {
    auto path = dir.path() / ("input-" + std::to_string(files.size()) + ".txt");
    std::ofstream(path, std::ios::binary) << bytes;
    files.push_back(path);
    return path;
  }

  LocalOptions options(std::size_t concurrency = 1) const {
    LocalOptions o;
    o.concurrency = concurrency;
    o.fetch.temp_dir = dir.path();
    return o;
  }
};

// One job per file, indexed in order, by path: fetched (hashed, identified) on the pool.
std::vector<Job> path_jobs(const std::vector<std::filesystem::path>& files) {
  std::vector<Job> jobs;
  for (const auto& f : files) {
    Job j;
    j.index = jobs.size();
    j.input = f.string();
    jobs.push_back(std::move(j));
  }
  return jobs;
}

// The same jobs already fetched and hashed by the caller: nothing runs on the pool, so the
// whole run is on the test's thread and what is ready after io.poll() is all there is.
std::vector<Job> fetched_jobs(const std::vector<std::filesystem::path>& files) {
  auto jobs = path_jobs(files);
  for (auto& j : jobs) {
    const std::filesystem::path path = j.input;
    j.fetched = FetchedArtifact{path, std::filesystem::file_size(path), sha256_file(path).value(),
                                "text/plain", nullptr};
  }
  return jobs;
}

// A run() in progress: the results in the order the sink got them.
struct Run {
  std::vector<JobResult> results;
  bool finished = false;

  void start(asio::io_context& io, LocalBackend& backend, std::vector<Job> jobs) {
    asio::co_spawn(
        io, backend.run(std::move(jobs), [this](JobResult r) { results.push_back(std::move(r)); }),
        [this](std::exception_ptr ep) {
          REQUIRE_FALSE(ep);
          finished = true;
        });
  }
};

// Runs handlers until `done` holds. The wait for one only bounds a hung test.
template <typename Pred>
void run_until(asio::io_context& io, Pred done) {
  while (!done()) {
    REQUIRE_MESSAGE(io.run_one_for(60s) > 0, "nothing left to run, or stalled");
  }
}

const EngineAnalysis* answer_of(const JobResult& r, const std::string& engine) {
  const auto it = std::ranges::find(r.analyses, engine, &EngineAnalysis::engine);
  return it == r.analyses.end() ? nullptr : &*it;
}

std::vector<std::string> engine_names(const JobResult& r) {
  std::vector<std::string> names;
  for (const auto& a : r.analyses) {
    names.push_back(a.engine);
  }
  return names;
}

} // namespace

TEST_CASE("backend::LocalBackend identifies an artifact by default") {
  for (auto make : {&path_job, &spooled_job}) {
    CAPTURE(make().input);
    FakeEngine every("every", {"*"});
    auto r = run_one({}, {&every}, make());
    CHECK(r.bounty.mimetype.value_or("") == "text/plain");
    CHECK(r.bounty.sha256.value_or("").size() == 64);
  }
}

TEST_CASE("backend::LocalBackend with identify_only_if_needed: no libmagic when every engine "
          "scans every type, a spooled file included; hashed all the same") {
  for (auto make : {&path_job, &spooled_job}) {
    CAPTURE(make().input);
    FakeEngine every("every", {"*"});
    LocalOptions opts;
    opts.identify_only_if_needed = true;
    auto r = run_one(opts, {&every}, make());
    CHECK_FALSE(r.bounty.mimetype);
    CHECK(r.bounty.sha256.value_or("").size() == 64);
    REQUIRE(every.scans() == 1);
    CHECK(every.seen()[0].sha256 == r.bounty.sha256.value_or(""));
    REQUIRE(r.analyses.size() == 1);
    CHECK(r.analyses[0].analysis.result == model::Verdict::benign);
  }
}

TEST_CASE("backend::LocalBackend with identify_only_if_needed: identified when an engine scans "
          "only some types") {
  for (auto make : {&path_job, &spooled_job}) {
    CAPTURE(make().input);
    FakeEngine some("some", {"pe"}); // never text: skipped, but only once its type is known
    LocalOptions opts;
    opts.identify_only_if_needed = true;
    auto r = run_one(opts, {&some}, make());
    CHECK(r.bounty.mimetype.value_or("") == "text/plain");
  }
}

TEST_CASE("backend::LocalBackend with digest_only_if_needed: a local file is not hashed unless "
          "an engine uses its sha256 or a bounty gives one to check") {
  LocalOptions opts;
  opts.digest_only_if_needed = true;
  SUBCASE("no engine uses it: no sha256 anywhere, the scan as usual") {
    FakeEngine every("every", {"*"});
    auto r = run_one(opts, {&every}, path_job());
    CHECK_FALSE(r.bounty.sha256);
    REQUIRE(every.scans() == 1);
    CHECK(every.seen()[0].sha256.empty());
    CHECK(every.seen()[0].path == k_text);
    REQUIRE(r.analyses.size() == 1);
    CHECK(r.analyses[0].analysis.result == model::Verdict::benign);
  }
  SUBCASE("an engine whose manifest has a {sha256} placeholder: hashed") {
    FakeEngine every("every", {"*"});
    every.manifest().raw = {{"scan", {{"argv", {"scanner", "--hash", "{sha256}", "{path}"}}}}};
    auto r = run_one(opts, {&every}, path_job());
    CHECK(r.bounty.sha256.value_or("") == sha256_file(k_text).value());
    REQUIRE(every.scans() == 1);
    CHECK(every.seen()[0].sha256 == sha256_file(k_text).value());
  }
  SUBCASE("a bounty's sha256 is checked all the same") {
    FakeEngine every("every", {"*"});
    Job good = path_job();
    good.bounty = model::Bounty{};
    good.bounty->artifact_uri = k_text.string();
    good.bounty->sha256 = sha256_file(k_text).value();
    auto r = run_one(opts, {&every}, good);
    REQUIRE(r.analyses.size() == 1);
    CHECK(r.analyses[0].analysis.result == model::Verdict::benign);
    Job bad = good;
    bad.bounty->sha256 = std::string(64, '0');
    auto w = run_one(opts, {&every}, bad);
    REQUIRE(w.analyses.size() == 1);
    CHECK(w.analyses[0].analysis.result == model::Verdict::unknown);
    CHECK(w.analyses[0].analysis.error.value_or("").find("sha256 mismatch") != std::string::npos);
    CHECK(every.scans() == 1); // the mismatch is not scanned
  }
}

TEST_CASE("backend::LocalBackend::run: every job gets one result, with its index and input") {
  Inputs in;
  FakeEngine alpha("alpha");
  FakeEngine beta("beta");
  alpha.on_content("EVIL", {pss::test::verdict(Verdict::malicious, "Evil"), {}, false});
  for (int i = 0; i < 6; ++i) {
    in.add(i % 2 == 0 ? "EVIL" : "fine " + std::to_string(i));
  }
  auto jobs = path_jobs(in.files);
  for (auto& j : jobs) {
    j.index += 100; // the result's index is the job's, not its position
  }
  for (std::size_t concurrency : {1, 2, 4}) {
    CAPTURE(concurrency);
    asio::io_context io;
    LocalBackend backend(in.options(concurrency), {&alpha, &beta});
    Run run;
    run.start(io, backend, jobs);
    io.run();
    CHECK(run.finished);
    REQUIRE(run.results.size() == jobs.size());
    std::vector<std::size_t> indexes;
    for (const auto& r : run.results) {
      indexes.push_back(r.index);
      REQUIRE(r.index >= 100);
      REQUIRE(r.index < 100 + jobs.size());
      const auto& file = in.files[r.index - 100];
      CHECK(r.input == file.string());
      // Each answer is about its own input: the even files are the malicious ones.
      CHECK(engine_names(r) == std::vector<std::string>{"alpha", "beta"});
      const auto* a = answer_of(r, "alpha");
      REQUIRE(a);
      CHECK(a->analysis.result ==
            ((r.index - 100) % 2 == 0 ? Verdict::malicious : Verdict::benign));
      CHECK(a->analysis.product == "alpha product");
    }
    std::ranges::sort(indexes);
    CHECK(std::ranges::adjacent_find(indexes) == indexes.end()); // no job answered twice
  }
  // Each engine scanned each input once per run, and the caller's engines were left alone.
  for (const auto& f : in.files) {
    CHECK(alpha.scans_of(f) == 3);
    CHECK(beta.scans_of(f) == 3);
  }
  CHECK(alpha.starts + alpha.stops + beta.starts + beta.stops == 0);
}

TEST_CASE("backend::LocalBackend::run: with concurrency 1 the jobs are scanned one at a time, "
          "their results in job order") {
  Inputs in;
  for (int i = 0; i < 4; ++i) {
    in.add("input " + std::to_string(i));
  }
  FakeEngine alpha("alpha");
  FakeEngine beta("beta");
  alpha.otherwise.hold = true; // each scan waits for the test
  asio::io_context io;
  LocalBackend backend(in.options(1), {&alpha, &beta});
  Run run;
  run.start(io, backend, fetched_jobs(in.files));
  for (std::size_t k = 0; k < in.files.size(); ++k) {
    CAPTURE(k);
    run_until(io, [&] { return alpha.held() > 0; });
    io.poll(); // all that can run now: no second scan may start
    CHECK(alpha.held() == 1);
    CHECK(alpha.scans() == k + 1);
    CHECK(alpha.seen().back().path == in.files[k]);
    CHECK(run.results.size() == k); // job k is not answered while alpha scans it
    alpha.release();
  }
  run_until(io, [&] { return run.finished; });
  REQUIRE(run.results.size() == in.files.size());
  for (std::size_t k = 0; k < run.results.size(); ++k) {
    CHECK(run.results[k].index == k);
    CHECK(run.results[k].input == in.files[k].string());
  }
}

TEST_CASE("backend::LocalBackend::run: concurrency N scans N jobs at once, no more") {
  Inputs in;
  for (int i = 0; i < 7; ++i) {
    in.add("input " + std::to_string(i));
  }
  FakeEngine alpha("alpha");
  alpha.otherwise.hold = true;
  asio::io_context io;
  LocalBackend backend(in.options(2), {&alpha});
  Run run;
  run.start(io, backend, fetched_jobs(in.files));
  run_until(io, [&] { return alpha.held() >= 2; });
  io.poll();
  CHECK(alpha.held() == 2);
  CHECK(run.results.empty());
  alpha.otherwise.hold = false; // the others answer at once
  alpha.release();
  run_until(io, [&] { return run.finished; });
  CHECK(run.results.size() == 7);
  CHECK(alpha.scans() == 7);
}

TEST_CASE("backend::LocalBackend: a job naming engines is scanned by those only") {
  Inputs in;
  const auto file = in.add("some bytes");
  FakeEngine alpha("alpha");
  FakeEngine beta("beta");
  SUBCASE("one engine of two") {
    auto job = path_jobs(in.files)[0];
    job.engines = {"beta"};
    const auto r = run_one(in.options(), {&alpha, &beta}, job);
    CHECK(alpha.scans() == 0);
    CHECK(beta.scans_of(file) == 1);
    REQUIRE(engine_names(r) == std::vector<std::string>{"beta"});
    CHECK(r.analyses[0].analysis.result == Verdict::benign);
    CHECK(r.analyses[0].analysis.product == "beta product");
  }
  SUBCASE("an engine it does not have: unknown for that name, in the job's order") {
    auto job = path_jobs(in.files)[0];
    job.engines = {"gamma", "alpha"};
    const auto r = run_one(in.options(), {&alpha, &beta}, job);
    CHECK(alpha.scans_of(file) == 1);
    CHECK(beta.scans() == 0);
    REQUIRE(engine_names(r) == std::vector<std::string>{"gamma", "alpha"});
    const auto& gamma = r.analyses[0].analysis;
    CHECK(gamma.result == Verdict::unknown);
    CHECK(gamma.error == std::optional<std::string>("no engine named 'gamma' here"));
    CHECK(gamma.product.empty());
    CHECK(gamma.bid == std::optional<model::Wei>(0));
    CHECK(r.analyses[1].analysis.result == Verdict::benign);
  }
  SUBCASE("the same in a run") {
    auto jobs = path_jobs(in.files);
    jobs[0].engines = {"alpha"};
    asio::io_context io;
    LocalBackend backend(in.options(), {&alpha, &beta});
    Run run;
    run.start(io, backend, jobs);
    io.run();
    REQUIRE(run.results.size() == 1);
    CHECK(engine_names(run.results[0]) == std::vector<std::string>{"alpha"});
    CHECK(alpha.scans() == 1);
    CHECK(beta.scans() == 0);
  }
}

TEST_CASE("backend::LocalBackend::cancel during a run: no further job, the run returns") {
  Inputs in;
  for (int i = 0; i < 4; ++i) {
    in.add("input " + std::to_string(i));
  }
  FakeEngine alpha("alpha");
  FakeEngine beta("beta");
  for (auto make_jobs : {&path_jobs, &fetched_jobs}) {
    alpha.otherwise.hold = true;
    asio::io_context io;
    LocalBackend backend(in.options(1), {&alpha, &beta});
    Run run;
    run.start(io, backend, make_jobs(in.files));
    run_until(io, [&] { return alpha.held() == 1; }); // job 0 is being scanned
    const auto alpha_before = alpha.scans();
    const auto beta_before = beta.scans();
    backend.cancel();
    alpha.otherwise.hold = false; // were a further job scanned, it would not hang the test
    alpha.release();
    io.run(); // returns: the run ended and nothing waits
    CHECK(run.finished);
    // The job in flight is answered; the others never reach an engine nor the sink.
    REQUIRE(run.results.size() == 1);
    CHECK(run.results[0].index == 0);
    CHECK(alpha.scans() == alpha_before);
    CHECK(beta.scans() == beta_before);
  }
  for (std::size_t k = 1; k < in.files.size(); ++k) {
    CHECK(alpha.scans_of(in.files[k]) == 0);
    CHECK(beta.scans_of(in.files[k]) == 0);
  }
}

TEST_CASE("backend::LocalBackend: an engine that throws answers unknown, the other normally") {
  Inputs in;
  const auto file = in.add("trips the driver");
  FakeEngine alpha("alpha");
  FakeEngine beta("beta");
  alpha.on_name(file.filename().string(), {{}, "driver bug", false});
  beta.otherwise.answer = pss::test::verdict(Verdict::malicious, "Trip");
  const auto r = run_one(in.options(), {&alpha, &beta}, path_jobs(in.files)[0]);
  REQUIRE(engine_names(r) == std::vector<std::string>{"alpha", "beta"});
  const auto& a = r.analyses[0].analysis;
  CHECK(a.result == Verdict::unknown);
  CHECK(a.error == std::optional<std::string>("internal error: driver bug"));
  CHECK(a.product == "alpha product");
  CHECK(a.vendor == "alpha vendor");
  CHECK(a.bid == std::optional<model::Wei>(0));
  const auto& b = r.analyses[1].analysis;
  CHECK(b.result == Verdict::malicious);
  CHECK(b.result_name == std::optional<std::string>("Trip"));
  CHECK_FALSE(b.error);
  CHECK(alpha.scans_of(file) == 1);
  CHECK(beta.scans_of(file) == 1);
}

TEST_CASE("backend::LocalBackend: jobs it cannot scan are answered unknown for every engine, "
          "without a scan") {
  Inputs in;
  const auto file = in.add("never scanned");
  FakeEngine alpha("alpha");
  FakeEngine beta("beta");
  Job job = path_jobs(in.files)[0];
  std::string error;
  std::string comment;
  SUBCASE("a job with an error") {
    job.error = "bounty.json: not JSON";
    error = "bounty.json: not JSON";
    comment = "SKIPPED:CANNOT-FETCH";
  }
  SUBCASE("a bounty expired before its scan") {
    model::Bounty b;
    b.artifact_uri = file.string();
    b.expiration = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) - 1h;
    job.bounty = b;
    error = "bounty expired at " + model::format_iso8601(*b.expiration) + " before it was scanned";
    comment = "SKIPPED";
  }
  SUBCASE("an input that cannot be fetched") {
    job.input = (in.dir.path() / "missing").string();
    error = "'" + job.input + "': No such file or directory";
    comment = "SKIPPED:CANNOT-FETCH";
  }
  for (bool in_a_run : {false, true}) {
    CAPTURE(in_a_run);
    JobResult r;
    if (in_a_run) {
      asio::io_context io;
      LocalBackend backend(in.options(), {&alpha, &beta});
      Run run;
      run.start(io, backend, {job});
      io.run();
      REQUIRE(run.results.size() == 1);
      r = run.results[0];
    } else {
      r = run_one(in.options(), {&alpha, &beta}, job);
    }
    CHECK(r.input == job.input);
    REQUIRE(engine_names(r) == std::vector<std::string>{"alpha", "beta"});
    for (const auto& [name, a] : r.analyses) {
      CAPTURE(name);
      CHECK(a.result == Verdict::unknown);
      CHECK(a.error == std::optional<std::string>(error));
      CHECK(a.comments == std::optional<std::string>(comment));
      CHECK(a.product == name + " product");
      CHECK(a.vendor == name + " vendor");
      CHECK(a.bid == std::optional<model::Wei>(0));
    }
  }
  CHECK(alpha.scans() == 0);
  CHECK(beta.scans() == 0);
}

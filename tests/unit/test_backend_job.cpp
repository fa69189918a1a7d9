#include "backend/job.hpp"
#include "unit/support.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::backend;
using namespace pss::model;
using nlohmann::json;

namespace {

// Through the wire: to JSON, one line of text, parsed, back.
Job round_trip(const Job& job) {
  auto line = to_json_line(to_json(job));
  REQUIRE(line.find('\n') == std::string::npos);
  auto back = job_from_json(json::parse(line));
  REQUIRE_MESSAGE(back.has_value(), error_of(back));
  return *back;
}

JobResult round_trip(const JobResult& result) {
  auto line = to_json_line(to_json(result));
  REQUIRE(line.find('\n') == std::string::npos);
  auto back = job_result_from_json(json::parse(line));
  REQUIRE_MESSAGE(back.has_value(), error_of(back));
  return *back;
}

Bounty full_bounty() {
  auto b = parse_bounty(R"({
    "id": 123456789012, "artifact_type": "url", "artifact_uri": "https://example.com/x",
    "sha256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
    "mimetype": "text/html", "expiration": "2030-05-01T12:30:00Z", "phase": "arbitration",
    "response_url": "http://127.0.0.1:1/r",
    "rules": {"min_allowed_bid": 1000, "max_allowed_bid": 2000},
    "metadata": {"k": [1, "two"]}})");
  REQUIRE(b.has_value());
  return *b;
}

} // namespace

TEST_CASE("backend::job JSON") {
  SUBCASE("a plain input") {
    Job job;
    job.index = 7;
    job.input = "tests/samples/eicar.com";
    auto j = to_json(job);
    CHECK(j["index"] == 7);
    CHECK(j["input"] == "tests/samples/eicar.com");
    CHECK(j["artifact_type"] == "file");
    CHECK_FALSE(j.contains("bounty"));
    CHECK_FALSE(j.contains("error"));
    auto back = round_trip(job);
    CHECK(back.index == 7);
    CHECK(back.input == job.input);
    CHECK(back.artifact_type == ArtifactType::file);
    CHECK_FALSE(back.bounty.has_value());
    CHECK_FALSE(back.error.has_value());
  }
  SUBCASE("a URL artifact and an error known before scanning") {
    Job job;
    job.input = "http://example.com/a b";
    job.artifact_type = ArtifactType::url;
    job.error = "'x': invalid bounty: bounty field 'sha256': expected 64 hex digits";
    auto back = round_trip(job);
    CHECK(back.artifact_type == ArtifactType::url);
    REQUIRE(back.error.has_value());
    CHECK(*back.error == *job.error);
  }
  SUBCASE("a given bounty keeps every field") {
    Job job;
    job.index = 1;
    job.input = "bounty.json";
    job.bounty = full_bounty();
    auto back = round_trip(job);
    REQUIRE(back.bounty.has_value());
    CHECK(to_json(*back.bounty) == to_json(*job.bounty));
    CHECK(back.bounty->id == 123456789012ULL);
    CHECK(back.bounty->phase == Phase::arbitration);
    CHECK(back.bounty->rules.max_allowed_bid == 2000);
    CHECK(back.bounty->metadata == json{{"k", {1, "two"}}});
  }
  SUBCASE("an artifact the caller fetched travels as its file and digest, not its bytes") {
    Job job;
    job.input = "data:...";
    job.fetched =
        FetchedArtifact{"/tmp/pss/artifact-\xff", 68, std::string(64, 'a'), "text/plain", nullptr};
    CHECK(to_json(job)["fetched"].size() == 4); // no owner: the sender keeps the file
    auto back = round_trip(job);
    REQUIRE(back.fetched.has_value());
    CHECK(back.fetched->path == job.fetched->path);
    CHECK(back.fetched->size == 68);
    CHECK(back.fetched->sha256 == job.fetched->sha256);
    CHECK(back.fetched->mimetype == "text/plain");
    CHECK_FALSE(round_trip(Job{}).fetched.has_value());
  }
  SUBCASE("names that are not UTF-8, or hold newlines, arrive byte for byte") {
    for (std::string name : {std::string("raw/bad-\xff\xfe-name"), std::string("new\nline"),
                             std::string("caf\xc3\xa9"), std::string("\xed\xa0\x80 surrogate"),
                             std::string("nul\0byte", 8), std::string("")}) {
      Job job;
      job.input = name;
      CHECK(round_trip(job).input == name);
    }
    Job job;
    job.input = "caf\xc3\xa9";
    CHECK(to_json(job)["input"] == "caf\xc3\xa9"); // valid UTF-8 stays a plain string
    job.input = "bad-\xff";
    CHECK(to_json(job)["input"] == json{{"__pss_bytes_hex__", "6261642dff"}});
  }
  SUBCASE("errors name the field") {
    CHECK(error_of(job_from_json(json::parse(R"({"input": "x"})"))) ==
          "job field 'index': missing");
    CHECK(error_of(job_from_json(json::parse(R"({"index": -1, "input": "x"})"))) ==
          "job field 'index': expected a non-negative integer, got number");
    CHECK(error_of(job_from_json(json::parse(R"({"index": 1})"))) == "job field 'input': missing");
    CHECK(error_of(job_from_json(json::parse(R"({"index": 1, "input": 2})"))) ==
          "job field 'input': expected a string, got number");
    CHECK(error_of(job_from_json(
              json::parse(R"({"index": 1, "input": "x", "artifact_type": "pdf"})"))) ==
          "job field 'artifact_type': expected \"file\" or \"url\", got \"pdf\"");
    CHECK(error_of(job_from_json(json::parse(R"({"index": 1, "input": "x", "bounty": {}})"))) ==
          "job: bounty field 'artifact_uri': missing");
    CHECK(error_of(job_from_json(
              json::parse(R"({"index": 1, "input": {"__pss_bytes_hex__": "abc"}})"))) ==
          "job: __pss_bytes_hex__: odd number of hex digits");
    CHECK(error_of(job_from_json(json::parse("[]"))) == "job: expected a JSON object, got array");
    CHECK(error_of(job_from_json(json::parse(R"({"index": 1, "input": "x", "fetched": 3})"))) ==
          "job field 'fetched': expected an object");
    CHECK(error_of(job_from_json(json::parse(
              R"({"index": 1, "input": "x", "fetched": {"path": "/f", "sha256": "",
                  "mimetype": "", "size": -2}})"))) ==
          "job fetched field 'size': expected a non-negative integer");
  }
}

TEST_CASE("backend::job_result JSON") {
  SUBCASE("analyses of several engines, in order, as the CLI prints them") {
    JobResult r;
    r.index = 3;
    r.input = "tests/samples/eicar.com";
    r.bounty.id = 177223827099182217ULL;
    r.bounty.artifact_uri = "file:///work/main/tests/samples/eicar.com";
    r.bounty.sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    r.bounty.mimetype = "text/plain";
    Analysis mal;
    mal.result = Verdict::malicious;
    mal.result_name = "Eicar-Test-Signature";
    mal.product = "ClamAV";
    mal.vendor = "Cisco Talos";
    mal.analysis_engine_version = "1.4.6";
    mal.confidence = 0.7;
    mal.metadata = {{"signature", "Eicar-Test-Signature.UNOFFICIAL"}};
    finalize(mal, r.bounty);
    auto unknown = Analysis::unknown_because("worker (pid 12) died while scanning: killed by "
                                             "signal 9 (SIGKILL)",
                                             std::string(k_skipped_cannot_fetch));
    unknown.product = "YARA";
    unknown.vendor = "VirusTotal";
    finalize(unknown, r.bounty);
    r.analyses = {{"clamav", mal}, {"yara", unknown}};

    auto back = round_trip(r);
    CHECK(back.index == 3);
    CHECK(back.input == r.input);
    CHECK(to_json(back.bounty) == to_json(r.bounty));
    REQUIRE(back.analyses.size() == 2);
    CHECK(back.analyses[0].engine == "clamav");
    CHECK(back.analyses[1].engine == "yara");
    // The printed forms are the same, key order included.
    CHECK(to_json(back.analyses[0].analysis).dump() == to_json(mal).dump());
    CHECK(to_json(back.analyses[1].analysis).dump() == to_json(unknown).dump());
    CHECK(back.analyses[0].analysis.confidence == 0.7);
    CHECK(back.analyses[0].analysis.bid == mal.bid);
  }
  SUBCASE("an input named \"\" (its bounty's artifact_uri is empty) survives") {
    JobResult r;
    r.input = "";
    r.analyses = {{"clamav", Analysis::unknown_because("'': No such file or directory")}};
    auto back = round_trip(r);
    CHECK(back.input.empty());
    CHECK(back.bounty.artifact_uri.empty());
  }
  SUBCASE("bytes that are not UTF-8 anywhere in it come back as they were") {
    JobResult r;
    r.input = "bad-\xff-name";
    r.bounty.artifact_uri = "file:///tmp/bad-%FF-name";
    auto a = Analysis::unknown_because("cannot open 'bad-\xff-name'");
    a.metadata = {{"scanned_path", "Z:\\bad-\xfe"}};
    r.analyses = {{"fake", a}};
    auto back = round_trip(r);
    CHECK(back.input == r.input);
    CHECK(*back.analyses[0].analysis.error == "cannot open 'bad-\xff-name'");
    CHECK(back.analyses[0].analysis.metadata["scanned_path"] == "Z:\\bad-\xfe");
  }
  SUBCASE("errors") {
    CHECK(error_of(job_result_from_json(json::parse(R"({"index": 0, "input": "x"})"))) ==
          "job result field 'bounty': missing");
    CHECK(error_of(job_result_from_json(
              json::parse(R"({"index": 0, "input": "x", "bounty": {"artifact_uri": "x"}})"))) ==
          "job result field 'analyses': expected an array");
    CHECK(error_of(job_result_from_json(json::parse(
              R"({"index": 0, "input": "x", "bounty": {"artifact_uri": "x"},
                  "analyses": [{"engine": "e", "analysis": {"result": "bad"}}]})"))) ==
          "job result: analysis field 'result': expected one of malicious, benign, suspicious, "
          "unknown, got \"bad\"");
    CHECK(error_of(job_result_from_json(json::parse(
              R"({"index": 0, "input": "x", "bounty": {"artifact_uri": "x"},
                  "analyses": [{"analysis": {"result": "benign"}}]})"))) ==
          "job result analyses[] field 'engine': missing");
  }
}

TEST_CASE("backend::job JSON: a job with every field set comes back whole") {
  Job job;
  job.index = 41;
  job.input = "raw/\xff-input";
  job.artifact_type = ArtifactType::url;
  job.bounty = full_bounty();
  job.error = "cannot fetch '\xfe': refused";
  // Not hashed yet (the worker hashes it), and past 4 GiB: no narrowing on the way.
  job.fetched = FetchedArtifact{"/spool/\xff\xfe", (std::uint64_t{1} << 33) + 5, "", "", nullptr};
  job.engines = {"clamav", "odd-\xff-engine"};
  auto back = round_trip(job);
  CHECK(back.index == 41);
  CHECK(back.input == job.input);
  CHECK(back.artifact_type == ArtifactType::url);
  REQUIRE(back.bounty.has_value());
  CHECK(to_json(*back.bounty) == to_json(*job.bounty));
  CHECK(back.error == job.error);
  REQUIRE(back.fetched.has_value());
  CHECK(back.fetched->path == job.fetched->path);
  CHECK(back.fetched->size == job.fetched->size);
  CHECK(back.fetched->sha256.empty());
  CHECK(back.fetched->mimetype.empty());
  CHECK_FALSE(back.fetched->owner); // the sender keeps the file
  CHECK(back.engines == job.engines);
  // And the line is the same after a second trip: nothing drifts.
  CHECK(to_json_line(to_json(back)) == to_json_line(to_json(job)));
}

TEST_CASE("backend::job JSON: more bad lines, each error naming its field") {
  auto job_error = [](const char* text) { return error_of(job_from_json(json::parse(text))); };
  CHECK(job_error(R"({"index": 1.5, "input": "x"})") ==
        "job field 'index': expected a non-negative integer, got number");
  CHECK(job_error(R"({"index": "1", "input": "x"})") ==
        "job field 'index': expected a non-negative integer, got string");
  CHECK(job_error(R"({"index": 1, "input": "x", "error": 3})") ==
        "job field 'error': expected a string, got number");
  CHECK(job_error(R"({"index": 1, "input": "x", "artifact_type": 1})") ==
        "job field 'artifact_type': expected \"file\" or \"url\", got 1");
  CHECK(job_error(R"({"index": 1, "input": "x", "fetched": {"size": 1, "sha256": "",
                      "mimetype": ""}})") == "job fetched field 'path': missing");
  CHECK(job_error(R"({"index": 1, "input": "x", "fetched": {"path": 7, "size": 1,
                      "sha256": "", "mimetype": ""}})") ==
        "job fetched field 'path': expected a string, got number");
  CHECK(job_error(R"({"index": 1, "input": "x", "fetched": {"path": "/f", "size": 1,
                      "mimetype": ""}})") == "job fetched field 'sha256': missing");
  CHECK(job_error(R"({"index": 1, "input": "x", "fetched": {"path": "/f", "size": 1,
                      "sha256": ""}})") == "job fetched field 'mimetype': missing");
  CHECK(job_error(R"({"index": 1, "input": "x", "fetched": {"path": "/f", "sha256": "",
                      "mimetype": ""}})") ==
        "job fetched field 'size': expected a non-negative integer");
  CHECK(job_error(R"({"index": 1, "input": {"__pss_bytes_hex__": "zz"}})")
            .starts_with("job: __pss_bytes_hex__: "));
  // null is the same as absent: a sender may write every key.
  auto nulls = job_from_json(json::parse(
      R"({"index": 1, "input": "x", "bounty": null, "error": null, "fetched": null,
          "engines": null})"));
  REQUIRE_MESSAGE(nulls.has_value(), error_of(nulls));
  CHECK_FALSE(nulls->bounty);
  CHECK_FALSE(nulls->error);
  CHECK_FALSE(nulls->fetched);
  CHECK(nulls->engines.empty());
}

TEST_CASE("backend::job_result JSON: every analysis field, and more bad lines") {
  SUBCASE("an analysis with every field set comes back as it was printed") {
    JobResult r;
    r.index = 9;
    r.input = "x";
    r.bounty = full_bounty();
    r.bounty.phase = Phase::assertion; // a bid is kept outside arbitration
    Analysis a;
    a.result = Verdict::suspicious;
    a.confidence = 0.25;
    a.result_name = "Heur.\xff";
    a.product = "P";
    a.vendor = "V";
    a.analysis_engine_version = "1.2.3";
    a.analysis_definition_version = "27000";
    a.comments = "a comment";
    a.error = "partly failed";
    a.metadata = {{"nested", {{"list", {1, 2.5, nullptr, true}}}}, {"bytes", "\xfe"}};
    finalize(a, r.bounty);
    REQUIRE(a.bid.has_value());
    r.analyses = {{"e1", a}, {"e2", Analysis::unknown_because("gone")}};
    auto back = round_trip(r);
    CHECK(to_json(back.bounty) == to_json(r.bounty));
    REQUIRE(back.analyses.size() == 2);
    const auto& b = back.analyses[0].analysis;
    CHECK(to_json(b) == to_json(a)); // ordered: key order included (no dump: not UTF-8)
    CHECK(b.result == Verdict::suspicious);
    CHECK(b.confidence == 0.25);
    CHECK(b.bid == a.bid);
    CHECK(b.result_name == a.result_name);
    CHECK(b.analysis_definition_version == "27000");
    CHECK(b.comments == "a comment");
    CHECK(b.error == "partly failed");
    CHECK(b.metadata == a.metadata);
    CHECK(back.analyses[1].engine == "e2");
    CHECK(back.analyses[1].analysis.error == "gone");
  }
  SUBCASE("a metadata key that is not UTF-8 still makes one line, never an exception") {
    JobResult r;
    r.input = "x";
    auto a = Analysis::unknown_because("why");
    a.metadata = {{"key-\xff", 1}};
    r.analyses = {{"e", a}};
    std::string line;
    CHECK_NOTHROW(line = to_json_line(to_json(r)));
    CHECK(line.find('\n') == std::string::npos);
    auto back = job_result_from_json(json::parse(line));
    REQUIRE_MESSAGE(back.has_value(), error_of(back));
    CHECK(back->analyses[0].analysis.error == "why");
  }
  SUBCASE("errors name the field") {
    auto result_error = [](const char* text) {
      return error_of(job_result_from_json(json::parse(text)));
    };
    CHECK(result_error("[1]") == "job result: expected a JSON object, got array");
    CHECK(result_error(R"({"input": "x"})") == "job result field 'index': missing");
    CHECK(result_error(R"({"index": 0})") == "job result field 'input': missing");
    CHECK(result_error(R"({"index": 0, "input": "x", "bounty": {"artifact_uri": "x"},
                           "analyses": [3]})") == "job result field 'analyses': expected objects");
    CHECK(result_error(R"({"index": 0, "input": "x", "bounty": {"artifact_uri": "x"},
                           "analyses": [{"engine": "e"}]})") ==
          "job result analyses[] field 'analysis': missing");
    CHECK(result_error(R"({"index": 0, "input": "x", "bounty": {"artifact_uri": "x"},
                           "analyses": [{"engine": 5, "analysis": {}}]})") ==
          "job result analyses[] field 'engine': expected a string, got number");
    CHECK(result_error(R"({"index": 0, "input": "x",
                           "bounty": {"artifact_uri": "x", "sha256": "short"},
                           "analyses": []})")
              .starts_with("job result: bounty field 'sha256': "));
    CHECK(result_error(R"({"index": 0, "input": {"__pss_bytes_hex__": "f"}, "bounty": {},
                           "analyses": []})") ==
          "job result: __pss_bytes_hex__: odd number of hex digits");
  }
}

TEST_CASE("a job names the engines it wants; none is every engine") {
  Job job;
  job.input = "x";
  CHECK_FALSE(to_json(job).contains("engines"));
  CHECK(round_trip(job).engines.empty());
  job.engines = {"clamav", "yara"};
  CHECK(round_trip(job).engines == std::vector<std::string>{"clamav", "yara"});
  CHECK(
      error_of(job_from_json(json::parse(R"({"index": 0, "input": "x", "engines": "clamav"})"))) ==
      "job field 'engines': expected an array of engine names");
  CHECK(error_of(job_from_json(json::parse(R"({"index": 0, "input": "x", "engines": [1]})"))) ==
        "job field 'engines': expected an array of engine names");
}

TEST_CASE("a worker's hello: ready with its engines, or why it cannot start") {
  WorkerHello ready;
  ready.pid = 42;
  ready.engines = {{"clamav", "ClamAV", "Cisco"}};
  auto back = worker_hello_from_json(json::parse(to_json_line(to_json(ready))));
  REQUIRE_MESSAGE(back.has_value(), error_of(back));
  CHECK_FALSE(back->error);
  CHECK(back->pid == 42);
  REQUIRE(back->engines.size() == 1);
  CHECK(back->engines[0].product == "ClamAV");

  WorkerHello failed;
  failed.error = "while starting engine clamav: no database";
  back = worker_hello_from_json(json::parse(to_json_line(to_json(failed))));
  REQUIRE(back.has_value());
  CHECK(back->error == failed.error);

  CHECK_FALSE(worker_hello_from_json(json::parse(R"({"index": 3})")).has_value());
  CHECK_FALSE(worker_hello_from_json(json::parse(R"("ready")")).has_value());
}

TEST_CASE("a worker's engine states: every count comes back, and a bad line is refused") {
  std::vector<EngineState> states(2);
  states[0] = {"clamav", "ready", 2, 3, 1, 40, 7};
  states[1] = {"fake", "ok", 0, 0, 0, 0, 1};
  auto j = json::parse(to_json_line(to_json(states)));
  CHECK(is_states_line(j));
  auto back = states_from_json(j);
  REQUIRE_MESSAGE(back.has_value(), error_of(back));
  CHECK(*back == states);

  // A result is not a states line, and is not read as one.
  CHECK_FALSE(is_states_line(json::parse(R"({"index": 0, "input": "x", "analyses": []})")));
  CHECK_FALSE(states_from_json(json::parse(R"({"index": 0})")).has_value());
  CHECK(error_of(states_from_json(json::parse(R"({"states": {}})"))) ==
        "expected {\"states\": [...]}");
  CHECK(error_of(states_from_json(json::parse(R"({"states": [{"state": "ready"}]})"))) ==
        "a state without its engine's name");
  auto bad = states_from_json(json::parse(R"({"states": [{"engine": "e", "restarts": "2"}]})"));
  REQUIRE_FALSE(bad.has_value());
  CHECK(error_of(bad).starts_with("engine e: "));
}

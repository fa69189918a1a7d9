#include "backend/celery.hpp"
#include "celery/client.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace pss;
using namespace pss::backend;
using nlohmann::json;

namespace {

celery::ResultMeta meta(std::string status, json result) {
  celery::ResultMeta m;
  m.status = std::move(status);
  m.result = celery::Json(result);
  return m;
}

EngineInfo info(const std::string& name) {
  return {name, "Product", "Vendor"};
}

model::Bounty bounty() {
  model::Bounty b;
  b.id = 1;
  b.artifact_uri = "data:,x";
  return b;
}

json analysis_json(const std::string& verdict, const std::string& name) {
  return {{"result", verdict}, {"result_name", name}, {"product", "P"}, {"vendor", "V"}};
}

} // namespace

TEST_CASE("a worker's Analysis is the engine's answer") {
  auto a = analysis_from_task_result(info("clamav"), bounty(),
                                     meta("SUCCESS", analysis_json("malicious", "Eicar")));
  CHECK(a.result == model::Verdict::malicious);
  CHECK(a.result_name == std::optional<std::string>("Eicar"));
  CHECK(a.product == "P");
}

TEST_CASE("a worker running several engines answers {engine: Analysis}: each takes its own") {
  json both = {{"clamav", analysis_json("malicious", "Eicar")},
               {"yara", analysis_json("benign", "")}};
  CHECK(analysis_from_task_result(info("clamav"), bounty(), meta("SUCCESS", both)).result ==
        model::Verdict::malicious);
  CHECK(analysis_from_task_result(info("yara"), bounty(), meta("SUCCESS", both)).result ==
        model::Verdict::benign);
}

TEST_CASE("a failure, a revocation, an unreadable answer or no answer is unknown with why") {
  auto failed = analysis_from_task_result(
      info("clamav"), bounty(),
      meta("FAILURE", {{"exc_type", "ValueError"},
                       {"exc_message", json::array({"invalid bounty: no id"})},
                       {"exc_module", "builtins"}}));
  CHECK(failed.result == model::Verdict::unknown);
  CHECK(failed.product == "Product"); // made up here, as any backend's unknown
  CHECK(failed.bid.has_value());
  REQUIRE(failed.error);
  CHECK(failed.error->find("ValueError") != std::string::npos);
  CHECK(failed.error->find("invalid bounty: no id") != std::string::npos);

  auto revoked =
      analysis_from_task_result(info("clamav"), bounty(),
                                meta("REVOKED", {{"exc_type", "TaskRevokedError"},
                                                 {"exc_message", json::array({"expired"})},
                                                 {"exc_module", "celery.exceptions"}}));
  CHECK(revoked.result == model::Verdict::unknown);
  REQUIRE(revoked.error);
  CHECK(revoked.error->find("expired") != std::string::npos);

  auto unreadable =
      analysis_from_task_result(info("clamav"), bounty(), meta("SUCCESS", json("not an analysis")));
  CHECK(unreadable.result == model::Verdict::unknown);
  REQUIRE(unreadable.error);
  CHECK(unreadable.error->find("unreadable analysis") != std::string::npos);

  auto none = analysis_from_task_result(
      info("clamav"), bounty(),
      pss::Result<celery::ResultMeta>(pss::make_error("no result within 5 s")));
  CHECK(none.result == model::Verdict::unknown);
  CHECK(none.error == std::optional<std::string>("no result within 5 s"));
}

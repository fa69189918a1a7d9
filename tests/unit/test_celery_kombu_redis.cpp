#include "celery/kombu_redis.hpp"
#include "unit/celery_captures.hpp"
#include "unit/support.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;
using namespace pss::test::captures;

TEST_CASE("celery::kombu redis names") {
  const std::string sep(k_sep);
  SUBCASE("priority lists in BRPOP order") {
    CHECK(sep == std::string("\x06\x16"));
    CHECK(priority_lists("celery") == std::vector<std::string>{"celery", "celery" + sep + "3",
                                                               "celery" + sep + "6",
                                                               "celery" + sep + "9"});
  }
  SUBCASE("the list of a priority: kombu's steps 0, 3, 6, 9") {
    CHECK(list_for_priority("celery", 0) == "celery");
    CHECK(list_for_priority("celery", 2) == "celery");
    CHECK(list_for_priority("celery", 3) == "celery" + sep + "3");
    CHECK(list_for_priority("celery", 5) == "celery" + sep + "3");
    CHECK(list_for_priority("engine", 6) == "engine" + sep + "6");
    CHECK(list_for_priority("engine", 8) == "engine" + sep + "6");
    CHECK(list_for_priority("engine", 9) == "engine" + sep + "9");
    CHECK(list_for_priority("engine", -1) == "engine");
    CHECK(list_for_priority("engine", 42) == "engine" + sep + "9");
  }
  SUBCASE("the queue of a list") {
    for (const auto& list : priority_lists("engine")) {
      CHECK(queue_of_list(list) == "engine");
    }
    CHECK(queue_of_list("a.b") == "a.b");
    CHECK(queue_of_list("") == "");
  }
  SUBCASE("bindings") {
    CHECK(binding_key("celery") == "_kombu.binding.celery");
    CHECK(binding_member("celery") == "celery" + sep + sep + "celery");
  }
  SUBCASE("queues bound to a routing key") {
    const std::vector<std::string> members = {binding_member("celery"),
                                              binding_member("engine"),
                                              "celery" + sep + sep + "other",
                                              "celery" + sep + sep + "celery",
                                              "garbage",
                                              "a" + sep + "b",
                                              "a" + sep + sep + "b" + sep + "c"};
    CHECK(bound_queues(members, "celery") == std::vector<std::string>{"celery", "other"});
    CHECK(bound_queues(members, "engine") == std::vector<std::string>{"engine"});
    CHECK(bound_queues(members, "a").empty());
    CHECK(bound_queues(members, "nope").empty());
  }
}

TEST_CASE("celery::unacked_value") {
  SUBCASE("as kombu's QoS.append writes it, byte for byte") {
    CHECK(unacked_value(parse_envelope(k_slow).value()) == k_slow_unacked);
    CHECK(unacked_value(parse_envelope(k_slow_restored).value()) == k_slow_restored_unacked);
  }
  SUBCASE("exchange and routing key are JSON strings") {
    auto m = parse_envelope(k_scan).value();
    m.routing_key = "q\"\\";
    CHECK(unacked_value(m) == std::string("[") + std::string(k_scan) + R"(, "", "q\"\\"])");
    CHECK(Json::parse(unacked_value(m))[2] == "q\"\\");
  }
}

TEST_CASE("celery::redelivery_from_unacked") {
  SUBCASE("a visibility-timeout restore, byte for byte (monitor3)") {
    const auto r = redelivery_from_unacked(k_slow_unacked);
    REQUIRE_MESSAGE(r.has_value(), error_of(r));
    CHECK(r->queue == "celery");
    CHECK(r->exchange == "");
    CHECK(r->routing_key == "celery");
    CHECK(r->message == k_slow_restored);
  }
  SUBCASE("a requeue, byte for byte (monitor6)") {
    CHECK(redelivery_from_unacked(k_requeue_unacked).value().message == k_requeued);
  }
  SUBCASE("restoring twice adds no second flag") {
    CHECK(redelivery_from_unacked(k_slow_restored_unacked).value().message == k_slow_restored);
  }
  SUBCASE("compact input comes out in Python's format, flags where their objects exist") {
    const auto r = redelivery_from_unacked(
        R"([{"body":"x","headers":{"id":"\u00e9"},"properties":{}},"","engine"])");
    REQUIRE(r.has_value());
    CHECK(r->queue == "engine");
    CHECK(r->message ==
          R"({"body": "x", "headers": {"id": "\u00e9", "redelivered": true}, "properties": {}})");
    CHECK(redelivery_from_unacked(R"([{"body":"x"},"","q"])").value().message ==
          R"({"body": "x"})");
  }
  SUBCASE("another exchange: the queue comes from its binding") {
    const auto r = redelivery_from_unacked(R"([{"headers":{}}, "celery", "celery"])");
    REQUIRE(r.has_value());
    CHECK(r->queue == "");
    CHECK(r->exchange == "celery");
    CHECK(r->routing_key == "celery");
  }
  SUBCASE("errors") {
    // Found by fuzz_celery: nlohmann's out_of_range escaped and would have ended the worker.
    CHECK_FALSE(redelivery_from_unacked("1e999").has_value());
    CHECK(contains(error_of(redelivery_from_unacked("nope")),
                   "unacked entry: the value is not JSON"));
    CHECK(error_of(redelivery_from_unacked(R"([{}, ""])")) ==
          "unacked entry: expected [message, exchange, routing_key], got [{}, \"\"]");
    CHECK(error_of(redelivery_from_unacked(R"([{}, "", ""])")) ==
          "unacked entry: neither an exchange nor a routing key: no queue to restore to");
  }
}

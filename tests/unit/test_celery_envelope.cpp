#include "celery/envelope.hpp"
#include "celery/kombu_redis.hpp"
#include "unit/celery_captures.hpp"
#include "unit/support.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <stdexcept>
#include <string>
#include <vector>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;
using namespace pss::test::captures;
using namespace std::chrono_literals;

namespace {

const Json k_no_embed = Json::parse(R"({"callbacks": null, "errbacks": null, "chain": null,
                                        "chord": null})");

// A minimal envelope (raw JSON body) with one member replaced, added (value given) or removed
// (value nullptr: "remove").
std::string envelope_with(const std::string& pointer, const Json& value, bool remove = false) {
  Json e = Json::parse(R"({"body": "[[1], {}, null]", "content-encoding": "utf-8",
    "content-type": "application/json", "headers": {"id": "i1", "task": "t"},
    "properties": {"delivery_tag": "d1", "delivery_info": {"exchange": "", "routing_key": "q"}}})");
  if (!pointer.empty()) {
    const Json::json_pointer p(pointer);
    if (remove) {
      e[p.parent_pointer()].erase(p.back());
    } else {
      e[p] = value;
    }
  }
  return e.dump();
}

std::string envelope_without(const std::string& pointer) {
  return envelope_with(pointer, nullptr, true);
}

} // namespace

TEST_CASE("celery::parse_envelope") {
  SUBCASE("the send_task capture") {
    const auto m = parse_envelope(k_scan);
    REQUIRE_MESSAGE(m.has_value(), error_of(m));
    CHECK(m->id == "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10");
    CHECK(m->task == "engine.scan");
    CHECK(m->args == Json::parse(R"([{"path": "/data/img.bin", "depth": 2}])"));
    CHECK(m->args.dump() == R"([{"path":"/data/img.bin","depth":2}])"); // key order kept
    CHECK(m->kwargs == Json::object());
    CHECK(m->embed == k_no_embed);
    CHECK_FALSE(m->eta.has_value());
    CHECK_FALSE(m->expires.has_value());
    CHECK_FALSE(m->time_limit.has_value());
    CHECK_FALSE(m->soft_time_limit.has_value());
    CHECK_FALSE(m->ignore_result);
    CHECK(m->retries == 0);
    CHECK(m->delivery_tag == "9a9f832f-c835-4f1c-b375-215eede8f28b");
    CHECK(m->exchange == "");
    CHECK(m->routing_key == "celery");
    CHECK_FALSE(m->redelivered);
    CHECK(m->raw == k_scan);
  }
  SUBCASE("every task message captured") {
    struct Case {
      std::string_view raw;
      std::string_view id;
      std::string_view task;
      bool redelivered;
    };
    const std::vector<Case> cases = {
        {k_scan_monitor2, "11111111-2222-3333-4444-555555555555", "engine.scan", false},
        {k_fail_value, "22222222-2222-3333-4444-555555555555", "engine.scan", false},
        {k_fail_custom, "33333333-2222-3333-4444-555555555555", "engine.scan", false},
        {k_slow, "44444444-2222-3333-4444-555555555555", "engine.slow", false},
        {k_slow_restored, "44444444-2222-3333-4444-555555555555", "engine.slow", true},
        {k_priority5, "55555555-0000-0000-0000-000000000005", "engine.scan", false},
        {k_eta_expires, "66666666-0000-0000-0000-000000000006", "engine.scan", false},
        {k_queue_engine, "77777777-0000-0000-0000-000000000007", "engine.scan", false},
        {k_limits_ignore, "88888888-0000-0000-0000-000000000008", "engine.scan", false},
        {k_events_scan, "aaaaaaaa-0000-0000-0000-00000000000a", "engine.scan", false},
        {k_requeued, "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "engine.scan", true},
    };
    for (const auto& c : cases) {
      CAPTURE(c.id);
      const auto m = parse_envelope(c.raw);
      REQUIRE_MESSAGE(m.has_value(), error_of(m));
      CHECK(m->id == c.id);
      CHECK(m->task == c.task);
      CHECK(m->redelivered == c.redelivered);
      CHECK(m->embed == k_no_embed);
      CHECK(m->raw == c.raw);
    }
  }
  SUBCASE("kwargs, eta, expires, time limits, ignore_result, another queue") {
    const auto p5 = parse_envelope(k_priority5).value();
    CHECK(p5.args == Json::parse(R"([{"a": 1}])"));
    CHECK(p5.kwargs == Json::parse(R"({"mode": "fast"})"));
    const auto eta = parse_envelope(k_eta_expires).value();
    REQUIRE(eta.eta.has_value());
    REQUIRE(eta.expires.has_value());
    CHECK(to_isoformat(*eta.eta) == "2026-11-24T14:46:43.925252+00:00");
    CHECK(*eta.expires - *eta.eta == 240s);
    const auto limits = parse_envelope(k_limits_ignore).value();
    CHECK(limits.time_limit == 30.0);
    CHECK(limits.soft_time_limit == 20.0);
    CHECK(limits.ignore_result);
    CHECK(parse_envelope(k_queue_engine).value().routing_key == "engine");
  }
  SUBCASE("a raw JSON body (no body_encoding), compact JSON, any key order") {
    const auto m = parse_envelope(
        R"({"properties":{"delivery_info":{"routing_key":"q","exchange":""},"delivery_tag":"d"},)"
        R"("headers":{"task":"t","id":"i","retries":2},"content-type":"application/json",)"
        R"("body":"[[1, \"\u00e9\"], {\"k\": true}, {}]"})");
    REQUIRE_MESSAGE(m.has_value(), error_of(m));
    CHECK(m->args == Json::parse(R"([1, "é"])"));
    CHECK(m->kwargs == Json::parse(R"({"k": true})"));
    CHECK(m->embed == Json::object());
    CHECK(m->retries == 2);
  }
  SUBCASE("embed null, redelivered in either place, eta with Z") {
    CHECK(parse_envelope(envelope_with("", nullptr)).value().embed.is_null());
    CHECK(parse_envelope(envelope_with("/headers/redelivered", true)).value().redelivered);
    CHECK(parse_envelope(envelope_with("/properties/delivery_info/redelivered", true))
              .value()
              .redelivered);
    CHECK(parse_envelope(envelope_with("/headers/eta", "2026-11-24T14:46:43Z")).value().eta ==
          at("2026-11-24T14:46:43+00:00"));
  }
  SUBCASE("not JSON") {
    CHECK(contains(error_of(parse_envelope("{\"body\": ")),
                   "celery message: the envelope is not JSON"));
    CHECK(error_of(parse_envelope("[1, 2]")) ==
          "celery message: the envelope must be a JSON object, got array [1, 2]");
  }
  SUBCASE("body not base64") {
    const auto r = parse_envelope(envelope_with("/properties/body_encoding", "base64"));
    CHECK(error_of(r) == "celery message: body is not base64 (invalid base64: character '[' at "
                         "offset 0)");
  }
  SUBCASE("body not JSON, not a 3-array, or with the wrong types") {
    CHECK(contains(error_of(parse_envelope(envelope_with("/body", "[[1], {}"))),
                   "celery message: the body is not JSON"));
    CHECK(error_of(parse_envelope(envelope_with("/body", "[[1], {}]"))) ==
          "celery message: the body must be a JSON array [args, kwargs, embed], got array "
          "[[1], {}]");
    CHECK(error_of(parse_envelope(envelope_with("/body", R"({"args": []})"))) ==
          "celery message: the body must be a JSON array [args, kwargs, embed], got object "
          "{\"args\": []}");
    CHECK(error_of(parse_envelope(envelope_with("/body", "[1, {}, null]"))) ==
          "celery message: the body's args must be a list, got number 1");
    CHECK(error_of(parse_envelope(envelope_with("/body", "[[], [], null]"))) ==
          "celery message: the body's kwargs must be an object, got array []");
    CHECK(error_of(parse_envelope(envelope_with("/body", "[[], {}, 3]"))) ==
          "celery message: the body's embed must be an object or null, got number 3");
    CHECK(error_of(parse_envelope(envelope_with("/body", ""))) == "celery message: body is empty");
    CHECK(error_of(parse_envelope(envelope_without("/body"))) == "celery message: body is missing");
    CHECK(error_of(parse_envelope(envelope_with("/body", Json::array()))) ==
          "celery message: body must be a string, got array []");
  }
  SUBCASE("missing or mistyped headers.id, headers.task, headers") {
    CHECK(error_of(parse_envelope(envelope_without("/headers/id"))) ==
          "celery message: headers.id is missing");
    CHECK(error_of(parse_envelope(envelope_without("/headers/task"))) ==
          "celery message: headers.task is missing");
    CHECK(error_of(parse_envelope(envelope_with("/headers/task", 5))) ==
          "celery message: headers.task must be a string, got number 5");
    CHECK(error_of(parse_envelope(envelope_without("/headers"))) ==
          "celery message: headers are missing");
    CHECK(error_of(parse_envelope(k_pidbox_reply)) == "celery message: headers.id is missing");
  }
  SUBCASE("content types other than JSON, other encodings, compression") {
    CHECK(error_of(
              parse_envelope(envelope_with("/content-type", "application/x-python-serialize"))) ==
          "celery message: content-type \"application/x-python-serialize\" is not accepted "
          "(only application/json)");
    CHECK(error_of(parse_envelope(envelope_without("/content-type"))) ==
          "celery message: content-type is missing (only application/json is accepted)");
    CHECK(error_of(parse_envelope(envelope_with("/content-encoding", "binary"))) ==
          "celery message: content-encoding \"binary\" is not supported (only utf-8)");
    CHECK(parse_envelope(envelope_with("/content-encoding", "UTF8")).has_value());
    CHECK(error_of(parse_envelope(envelope_with("/headers/compression", "application/x-gzip"))) ==
          "celery message: compressed bodies (headers.compression \"application/x-gzip\") are not "
          "supported");
    CHECK(error_of(parse_envelope(envelope_with("/properties/body_encoding", "hex"))) ==
          "celery message: properties.body_encoding \"hex\" is not supported (only base64 or "
          "none)");
  }
  SUBCASE("what ack emulation needs: delivery tag and delivery info") {
    CHECK(error_of(parse_envelope(envelope_without("/properties/delivery_tag"))) ==
          "celery message: properties.delivery_tag is missing");
    CHECK(error_of(parse_envelope(envelope_without("/properties/delivery_info"))) ==
          "celery message: properties.delivery_info is missing");
    CHECK(error_of(parse_envelope(envelope_without("/properties/delivery_info/routing_key"))) ==
          "celery message: properties.delivery_info.routing_key is missing");
    CHECK(error_of(parse_envelope(envelope_without("/properties"))) ==
          "celery message: properties are missing");
  }
  SUBCASE("bad eta, expires, timelimit, retries, ignore_result") {
    CHECK(error_of(parse_envelope(envelope_with("/headers/eta", "tomorrow"))) ==
          "celery message: headers.eta: \"tomorrow\" is not an ISO 8601 time (expected "
          "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+hh:mm|+hhmm|+hh])");
    CHECK(error_of(parse_envelope(envelope_with("/headers/expires", 12))) ==
          "celery message: headers.expires must be an ISO 8601 string, got number 12");
    CHECK(error_of(parse_envelope(envelope_with("/headers/timelimit", Json::array({1})))) ==
          "celery message: headers.timelimit must be [hard, soft] (numbers or nulls), got array "
          "[1]");
    CHECK(error_of(parse_envelope(envelope_with("/headers/retries", -1))) ==
          "celery message: headers.retries must be a non-negative integer, got number -1");
    CHECK(error_of(parse_envelope(envelope_with("/headers/ignore_result", "yes"))) ==
          "celery message: headers.ignore_result must be a boolean, got string \"yes\"");
  }
}

TEST_CASE("celery::make_envelope") {
  SendOptions opts;
  opts.origin = "gen15113@vm";
  const EnvelopeStamp stamp{"9a9f832f-c835-4f1c-b375-215eede8f28b",
                            "a5cd5e66-fb5a-3019-8eb3-c3fdbfcc8a8e", at("2026-11-24T14:43:05Z")};
  const Json scan_args = Json::parse(R"([{"path": "/data/img.bin", "depth": 2}])");

  SUBCASE("Python's send_task envelope, byte for byte") {
    CHECK(make_envelope("9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "engine.scan", scan_args,
                        Json::object(), opts, stamp) == k_scan);
  }
  SUBCASE("priority 5 and kwargs (monitor4)") {
    SendOptions o;
    o.priority = 5;
    o.origin = "gen15679@vm";
    CHECK(make_envelope("55555555-0000-0000-0000-000000000005", "engine.scan",
                        Json::parse(R"([{"a": 1}])"), Json::parse(R"({"mode": "fast"})"), o,
                        {"e705683c-fea6-40fd-bc71-7e2b0b4a4ead",
                         "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", stamp.now}) == k_priority5);
    CHECK(list_for_priority(o.queue, o.priority) == "celery" + std::string(k_sep) + "3");
  }
  SUBCASE("eta and expires, with properties.expiration (monitor4: countdown=60, expires=300)") {
    SendOptions o;
    o.origin = "gen15679@vm";
    const TimePoint now = at("2026-11-24T14:45:43.925252Z");
    o.eta = now + 60s;
    o.expires = now + 300s;
    CHECK(make_envelope("66666666-0000-0000-0000-000000000006", "engine.scan",
                        Json::parse(R"([{"a": 1}])"), nullptr, o,
                        {"2e07c287-976b-48bf-bb49-03eeb9795d61",
                         "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", now}) == k_eta_expires);
  }
  SUBCASE("another queue (monitor4)") {
    SendOptions o;
    o.queue = "engine";
    o.origin = "gen15679@vm";
    CHECK(make_envelope("77777777-0000-0000-0000-000000000007", "engine.scan",
                        Json::parse(R"([{"a": 1}])"), Json::object(), o,
                        {"e10444c9-e05d-4bfb-843c-ce5810844bf9",
                         "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", stamp.now}) == k_queue_engine);
  }
  SUBCASE("time limits and ignore_result (monitor4)") {
    SendOptions o;
    o.time_limit = 30;
    o.soft_time_limit = 20;
    o.ignore_result = true;
    o.origin = "gen15679@vm";
    CHECK(make_envelope("88888888-0000-0000-0000-000000000008", "engine.scan",
                        Json::parse(R"([{"a": 1}])"), Json::object(), o,
                        {"9bec5f0c-8a87-4846-8cd0-8f53b25f9c12",
                         "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", stamp.now}) == k_limits_ignore);
  }
  SUBCASE("an expiry in the past is expiration 0; fractions of a second are kept") {
    SendOptions o = opts;
    o.expires = stamp.now - 5s;
    o.time_limit = 2.5;
    const Json e = Json::parse(make_envelope("i", "t", Json::array(), Json::object(), o, stamp));
    CHECK(e["properties"]["expiration"] == "0");
    CHECK(e["headers"]["expires"] == "2026-11-24T14:43:00+00:00");
    CHECK(e["headers"]["timelimit"] == Json::parse("[2.5, null]"));
  }
  SUBCASE("generated delivery tag, reply_to and origin; it parses back") {
    const std::string a = make_envelope("i1", "engine.scan", scan_args, Json::object(), {});
    const std::string b = make_envelope("i2", "engine.scan", scan_args, Json::object(), {});
    const Json ja = Json::parse(a);
    const Json jb = Json::parse(b);
    CHECK(ja["properties"]["delivery_tag"] != jb["properties"]["delivery_tag"]);
    CHECK(ja["properties"]["reply_to"] == jb["properties"]["reply_to"]); // one per process
    CHECK(ja["properties"]["reply_to"].get<std::string>().size() == 36);
    CHECK(ja["headers"]["origin"].get<std::string>().starts_with("gen"));
    CHECK(contains(ja["headers"]["origin"].get<std::string>(), "@"));
    const auto m = parse_envelope(a);
    REQUIRE_MESSAGE(m.has_value(), error_of(m));
    CHECK(m->id == "i1");
    CHECK(m->args == scan_args);
    CHECK(m->routing_key == "celery");
    CHECK(m->delivery_tag == ja["properties"]["delivery_tag"]);
  }
  SUBCASE("non-ASCII arguments are \\u-escaped in the body, and survive") {
    const Json args = Json::array({"é😀", Json::object({{"k", "\n"}})});
    const std::string text = make_envelope("i", "t", args, Json::object(), opts, stamp);
    const auto m = parse_envelope(text).value();
    CHECK(m.args == args);
    const Json e = Json::parse(text);
    CHECK(e["headers"]["argsrepr"] == "['é😀', {'k': '\n'}]");
    CHECK(contains(text, R"("argsrepr": "['\u00e9\ud83d\ude00', {'k': '\n'}]")"));
  }
  SUBCASE("null args and kwargs are empty; other types are a programming error") {
    const Json e = Json::parse(make_envelope("i", "t", nullptr, nullptr, opts, stamp));
    CHECK(e["headers"]["argsrepr"] == "[]");
    CHECK(e["headers"]["kwargsrepr"] == "{}");
    CHECK_THROWS_AS(make_envelope("i", "t", Json::object(), nullptr, opts, stamp),
                    std::invalid_argument);
    CHECK_THROWS_AS(make_envelope("i", "t", nullptr, Json::array(), opts, stamp),
                    std::invalid_argument);
  }
}

TEST_CASE("a number too large for JSON is an error, not an exception") {
  // Found by fuzz_celery: nlohmann's out_of_range escaped and would have ended the worker.
  CHECK_FALSE(parse_envelope("1e999").has_value());
}

TEST_CASE("an envelope with a NUL byte after its JSON is refused (found by fuzz_celery)") {
  // nlohmann's parser stops at a NUL: the message would have been taken, and its unacked copy
  // could not be restored after its worker died.
  std::string raw(k_scan);
  raw += std::string("\0]", 2);
  CHECK(contains(error_of(parse_envelope(raw)), "a NUL byte at offset"));
}

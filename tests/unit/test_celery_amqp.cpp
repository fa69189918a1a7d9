#include "celery/amqp.hpp"
#include "celery/broker.hpp"
#include "celery/envelope.hpp"
#include "celery/kombu_redis.hpp"
#include "celery/result_meta.hpp"
#include "unit/support.hpp"

#include <doctest/doctest.h>
#include <string>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;

TEST_CASE("celery::parse_amqp_url reads URLs as kombu does") {
  auto u = parse_amqp_url("amqp://guest:guest@127.0.0.1:5672//").value();
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 5672);
  CHECK(u.user == "guest");
  CHECK(u.password == "guest");
  CHECK(u.vhost == "/");

  u = parse_amqp_url("amqp://h").value();
  CHECK(u.host == "h");
  CHECK(u.port == 5672);
  CHECK(u.user == "guest");
  CHECK(u.vhost == "/");

  u = parse_amqp_url("amqp://scanner:p%40ss%3Aword@mq.example:5673/av%2Fprod").value();
  CHECK(u.user == "scanner");
  CHECK(u.password == "p@ss:word");
  CHECK(u.port == 5673);
  CHECK(u.vhost == "av/prod");
  CHECK(u.describe() == "amqp://scanner@mq.example:5673/av/prod"); // no password

  u = parse_amqp_url("pyamqp://u@[::1]:5000/v").value();
  CHECK(u.host == "::1");
  CHECK(u.port == 5000);
  CHECK(u.user == "u");
  CHECK(u.password == "guest");
  CHECK(u.vhost == "v");
  CHECK(u.describe() == "amqp://u@[::1]:5000/v");

  CHECK(contains(error_of(parse_amqp_url("amqps://h/")), "TLS (amqps://) is not supported"));
  CHECK(contains(error_of(parse_amqp_url("amqp://h:0/")), "'0' is not a port number"));
  CHECK(contains(error_of(parse_amqp_url("amqp://h:99999/")), "is not a port number"));
  CHECK(contains(error_of(parse_amqp_url("amqp://h/v?heartbeat=1")), "query strings"));
  CHECK(contains(error_of(parse_amqp_url("amqp://[::1/")), "unterminated"));
}

TEST_CASE("celery::parse_broker_url picks the transport by scheme") {
  CHECK(std::holds_alternative<RedisUrl>(parse_broker_url("redis://127.0.0.1:6379/0").value()));
  CHECK(std::holds_alternative<RedisUrl>(parse_broker_url("unix:///run/redis.sock").value()));
  CHECK(std::holds_alternative<AmqpUrl>(parse_broker_url("amqp://h//").value()));
  CHECK(contains(error_of(parse_broker_url("sqs://x")), "unknown scheme"));
  CHECK(describe(parse_broker_url("amqp://u:secret@h:1/v").value()) == "amqp://u@h:1/v");
}

TEST_CASE("celery::amqp_table_round_trip keeps py-amqp's types") {
  Json headers = Json::object();
  headers["lang"] = "py";
  headers["id"] = "9b1d6c1e";
  headers["shadow"] = nullptr;
  headers["retries"] = 0;
  headers["big"] = 5000000000LL; // int64
  headers["negative"] = -7;
  headers["timelimit"] = Json::array({nullptr, 30});
  headers["ratio"] = 0.25;
  headers["ignore_result"] = false;
  headers["nested"] = Json::object({{"a", Json::array({1, "x", true})}});
  headers["utf8"] = "caf\xc3\xa9";
  auto back = amqp_table_round_trip(headers);
  REQUIRE(back.has_value());
  CHECK(*back == headers);
}

TEST_CASE("celery::make_amqp_message is what parse_amqp_message reads") {
  SendOptions so;
  so.queue = "clamav";
  so.origin = "gen1@test";
  so.expires = parse_isoformat("2026-11-24T12:00:10Z").value();
  EnvelopeStamp stamp{"tag", "reply-uuid", parse_isoformat("2026-11-24T12:00:00Z").value()};
  Json args = Json::array({Json::object({{"id", 1}})});
  AmqpMessage m = make_amqp_message("task-1", "pssupervise.analyze", args, nullptr, so, stamp);
  // docs/celery.md §5: the body is the raw JSON, not base64; the headers are the envelope's.
  CHECK(
      m.body ==
      R"([[{"id": 1}], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])");
  CHECK(m.content_type == "application/json");
  CHECK(m.content_encoding == "utf-8");
  CHECK(m.correlation_id == "task-1");
  CHECK(m.reply_to == "reply-uuid");
  CHECK(m.delivery_mode == 2);
  CHECK(m.expiration == std::optional<std::string>("10000"));
  CHECK(m.headers["task"] == "pssupervise.analyze");
  CHECK(m.headers["root_id"] == "task-1");
  CHECK(m.headers["argsrepr"] == "[{'id': 1}]");

  // Through the wire's field table and back, as a worker receives it.
  m.headers = amqp_table_round_trip(m.headers).value();
  auto t = parse_amqp_message(m, {"3.7", "", "clamav", true});
  REQUIRE(t.has_value());
  CHECK(t->id == "task-1");
  CHECK(t->task == "pssupervise.analyze");
  CHECK(t->args == args);
  CHECK(t->kwargs == Json::object());
  CHECK(t->delivery_tag == "3.7");
  CHECK(t->routing_key == "clamav");
  CHECK(t->redelivered);
  CHECK(t->expires == so.expires);
  CHECK(t->raw.empty());
}

TEST_CASE("celery::parse_amqp_message refuses what is not a Celery task") {
  AmqpMessage m = make_amqp_message("t", "x", Json::array(), Json::object(), SendOptions{},
                                    EnvelopeStamp{"d", "r", {}});
  AmqpDelivery d{"1.1", "", "celery", false};
  auto with = [&](auto change) {
    AmqpMessage copy = m;
    change(copy);
    return error_of(parse_amqp_message(copy, d));
  };
  CHECK(contains(with([](AmqpMessage& c) { c.content_type = "application/x-python-serialize"; }),
                 "content-type \"application/x-python-serialize\" is not accepted"));
  CHECK(contains(with([](AmqpMessage& c) { c.content_type.clear(); }), "content-type is missing"));
  CHECK(contains(with([](AmqpMessage& c) { c.content_encoding = "binary"; }),
                 "content-encoding \"binary\" is not supported"));
  CHECK(contains(with([](AmqpMessage& c) { c.headers.erase("id"); }), "headers.id is missing"));
  CHECK(contains(with([](AmqpMessage& c) { c.headers["compression"] = "zlib"; }),
                 "compressed bodies"));
  CHECK(contains(with([](AmqpMessage& c) { c.body = "[1, 2]"; }), "[args, kwargs, embed]"));
  CHECK(contains(with([](AmqpMessage& c) { c.body.clear(); }), "body is empty"));
  CHECK(contains(with([](AmqpMessage& c) { c.body = "{"; }), "the body"));
}

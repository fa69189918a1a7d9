#include "celery/envelope.hpp"
#include "celery/kombu_redis.hpp"
#include "celery/result_meta.hpp"
#include "unit/support.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stdexcept>
#include <string>
#include <vector>

using pss::test::contains;
using pss::test::error_of;
using namespace pss::celery;
using namespace std::chrono_literals;

namespace {

TimePoint at(std::string_view iso) {
  return parse_isoformat(iso).value();
}

// Values captured with redis-cli MONITOR while Debian's python3-celery 5.2.6 / python3-kombu
// 5.2.4 ran against Redis (client_*.py, a real worker, kombu's requeue), byte for byte.

// redis_lpush_engine_scan.json: send_task('engine.scan', args=[{"path": "/data/img.bin",
// "depth": 2}], task_id='9b1d6c1e-...'), the value of LPUSH celery.
constexpr std::string_view k_scan =
    R"json({"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen15113@vm", "ignore_result": false}, "properties": {"correlation_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "reply_to": "a5cd5e66-fb5a-3019-8eb3-c3fdbfcc8a8e", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "9a9f832f-c835-4f1c-b375-215eede8f28b"}})json";

// monitor2: send_task engine.scan (then SUCCESS)
constexpr std::string_view k_scan_monitor2 =
    R"json({"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "11111111-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "11111111-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen15158@vm", "ignore_result": false}, "properties": {"correlation_id": "11111111-2222-3333-4444-555555555555", "reply_to": "48bfb36d-6491-3fcb-a6b3-439aa1825c46", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "6d92d96e-7d69-4079-9d89-0c0e668a6db8"}})json";

// monitor2: engine.scan that raises ValueError
constexpr std::string_view k_fail_value =
    R"json({"body": "W1t7InBhdGgiOiAiL3giLCAiZGVwdGgiOiA3LCAiZmFpbCI6ICJ2YWx1ZSJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "22222222-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "22222222-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'path': '/x', 'depth': 7, 'fail': 'value'}]", "kwargsrepr": "{}", "origin": "gen15159@vm", "ignore_result": false}, "properties": {"correlation_id": "22222222-2222-3333-4444-555555555555", "reply_to": "ef02347f-83d1-3317-9cf4-72d194e2ca6d", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "51e442e9-4e27-4e21-b7e9-b5aedf68a624"}})json";

// monitor2: engine.scan that raises wapp.EngineError
constexpr std::string_view k_fail_custom =
    R"json({"body": "W1t7InBhdGgiOiAiL3giLCAiZmFpbCI6ICJjdXN0b20ifV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "33333333-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "33333333-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'path': '/x', 'fail': 'custom'}]", "kwargsrepr": "{}", "origin": "gen15160@vm", "ignore_result": false}, "properties": {"correlation_id": "33333333-2222-3333-4444-555555555555", "reply_to": "a04c1f82-93d9-3392-b23e-d2c95eb2fd91", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "648a85c2-0c93-431b-a992-53289ca7237b"}})json";

// monitor3: engine.slow, acks_late, the worker is killed
constexpr std::string_view k_slow =
    R"json({"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}})json";

// monitor3: HSET unacked of k_slow
constexpr std::string_view k_slow_unacked =
    R"json([{"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}}, "", "celery"])json";

// monitor3: RPUSH after the visibility timeout
constexpr std::string_view k_slow_restored =
    R"json({"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false, "redelivered": true}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery", "redelivered": true}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}})json";

// monitor3: HSET unacked of the restored message
constexpr std::string_view k_slow_restored_unacked =
    R"json([{"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false, "redelivered": true}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery", "redelivered": true}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}}, "", "celery"])json";

// monitor4: priority=5, kwargs, LPUSH celery\x06\x163
constexpr std::string_view k_priority5 =
    R"json({"body": "W1t7ImEiOiAxfV0sIHsibW9kZSI6ICJmYXN0In0sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "55555555-0000-0000-0000-000000000005", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "55555555-0000-0000-0000-000000000005", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{'mode': 'fast'}", "origin": "gen15679@vm", "ignore_result": false}, "properties": {"correlation_id": "55555555-0000-0000-0000-000000000005", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 5, "body_encoding": "base64", "delivery_tag": "e705683c-fea6-40fd-bc71-7e2b0b4a4ead"}})json";

// monitor4: countdown=60, expires=300
constexpr std::string_view k_eta_expires =
    R"json({"body": "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "66666666-0000-0000-0000-000000000006", "shadow": null, "eta": "2026-11-24T14:46:43.925252+00:00", "expires": "2026-11-24T14:50:43.925252+00:00", "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "66666666-0000-0000-0000-000000000006", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{}", "origin": "gen15679@vm", "ignore_result": false}, "properties": {"correlation_id": "66666666-0000-0000-0000-000000000006", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "expiration": "300000", "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "2e07c287-976b-48bf-bb49-03eeb9795d61"}})json";

// monitor4: queue='engine'
constexpr std::string_view k_queue_engine =
    R"json({"body": "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "77777777-0000-0000-0000-000000000007", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "77777777-0000-0000-0000-000000000007", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{}", "origin": "gen15679@vm", "ignore_result": false}, "properties": {"correlation_id": "77777777-0000-0000-0000-000000000007", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "engine"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "e10444c9-e05d-4bfb-843c-ce5810844bf9"}})json";

// monitor4: time_limit=30, soft_time_limit=20, ignore_result
constexpr std::string_view k_limits_ignore =
    R"json({"body": "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "88888888-0000-0000-0000-000000000008", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [30, 20], "root_id": "88888888-0000-0000-0000-000000000008", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{}", "origin": "gen15679@vm", "ignore_result": true}, "properties": {"correlation_id": "88888888-0000-0000-0000-000000000008", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "9bec5f0c-8a87-4846-8cd0-8f53b25f9c12"}})json";

// monitor5: engine.scan with a worker running -E
constexpr std::string_view k_events_scan =
    R"json({"body": "W1t7InBhdGgiOiAiL2UiLCAiZGVwdGgiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "aaaaaaaa-0000-0000-0000-00000000000a", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "aaaaaaaa-0000-0000-0000-00000000000a", "parent_id": null, "argsrepr": "[{'path': '/e', 'depth': 1}]", "kwargsrepr": "{}", "origin": "gen15706@vm", "ignore_result": false}, "properties": {"correlation_id": "aaaaaaaa-0000-0000-0000-00000000000a", "reply_to": "d03d6fa3-6499-3117-90f1-ec7f91845002", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "6fdfc65c-0ce7-438a-b57d-5e61ab02acc9"}})json";

// monitor5: a pidbox reply (not a task)
constexpr std::string_view k_pidbox_reply =
    R"json({"body": "eyJ3NkB2bSI6IHsib2siOiAicG9uZyJ9fQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"ticket": "89aab9e6-1333-4e8e-80e0-78b84d3f04d0", "clock": 3}, "properties": {"delivery_mode": 1, "delivery_info": {"exchange": "reply.celery.pidbox", "routing_key": "da96d494-0e3c-3fd1-922f-7ff11723c05b"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "dc4da147-2248-41d1-9858-0b3fbcfa19c3"}})json";

// monitor6: HSET unacked, then message.requeue()
constexpr std::string_view k_requeue_unacked =
    R"json([{"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen16836@vm", "ignore_result": false}, "properties": {"correlation_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "reply_to": "f90cd679-cbe7-3b8c-8581-d46de4ede3ac", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "8ec2cc8a-f4dc-4789-b8ea-a4e5d649ee1a"}}, "", "celery"])json";

// monitor6: the LPUSH of the requeue
constexpr std::string_view k_requeued =
    R"json({"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen16836@vm", "ignore_result": false, "redelivered": true}, "properties": {"correlation_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "reply_to": "f90cd679-cbe7-3b8c-8581-d46de4ede3ac", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery", "redelivered": true}, "priority": 0, "body_encoding": "base64", "delivery_tag": "8ec2cc8a-f4dc-4789-b8ea-a4e5d649ee1a"}})json";

// monitor2: SETEX STARTED
constexpr std::string_view k_started_meta =
    R"json({"status": "STARTED", "result": {"pid": 15155, "hostname": "w1@vm"}, "traceback": null, "children": [], "date_done": null, "task_id": "11111111-2222-3333-4444-555555555555"})json";

// monitor2: SETEX SUCCESS
constexpr std::string_view k_success_meta =
    R"json({"status": "SUCCESS", "result": {"ok": true, "path": "/data/img.bin", "files": [1, 2, 3], "score": 0.5}, "traceback": null, "children": [], "date_done": "2026-11-24T14:43:19.754208", "task_id": "11111111-2222-3333-4444-555555555555"})json";

// monitor2: SETEX FAILURE ValueError
constexpr std::string_view k_failure_meta =
    R"json({"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["bad depth", 7], "exc_module": "builtins"}, "traceback": "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 451, in trace_task\n    R = retval = fun(*args, **kwargs)\n                 ^^^^^^^^^^^^^^^^^^^^\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 734, in __protected_call__\n    return self.run(*args, **kwargs)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/srv/lab/wapp.py\", line 15, in scan\n    raise ValueError('bad depth', job.get('depth'))\nValueError: ('bad depth', 7)\n", "children": [], "date_done": "2026-11-24T14:43:19.935385", "task_id": "22222222-2222-3333-4444-555555555555"})json";

// monitor2: SETEX FAILURE wapp.EngineError
constexpr std::string_view k_failure_custom_meta =
    R"json({"status": "FAILURE", "result": {"exc_type": "EngineError", "exc_message": ["custom failure"], "exc_module": "wapp"}, "traceback": "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 451, in trace_task\n    R = retval = fun(*args, **kwargs)\n                 ^^^^^^^^^^^^^^^^^^^^\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 734, in __protected_call__\n    return self.run(*args, **kwargs)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/srv/lab/wapp.py\", line 17, in scan\n    raise EngineError('custom failure')\nwapp.EngineError: custom failure\n", "children": [], "date_done": "2026-11-24T14:43:20.087631", "task_id": "33333333-2222-3333-4444-555555555555"})json";

// docs/celery.md §8 (shapes checked against Python), with a task id and a date filled in.
constexpr std::string_view k_revoked_expired =
    R"json({"status": "REVOKED", "result": {"exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"}, "traceback": null, "children": [], "date_done": "2026-11-24T14:43:19.754208", "task_id": "99999999-0000-0000-0000-000000000009"})json";
constexpr std::string_view k_not_registered =
    R"json({"status": "FAILURE", "result": {"exc_type": "NotRegistered", "exc_message": ["engine.nope"], "exc_module": "celery.exceptions"}, "traceback": null, "children": [], "date_done": "2026-11-24T14:43:19.754208", "task_id": "99999999-0000-0000-0000-000000000009"})json";

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

TEST_CASE("celery::redis names") {
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
  SUBCASE("bindings and the result key") {
    CHECK(binding_key("celery") == "_kombu.binding.celery");
    CHECK(binding_member("celery") == "celery" + sep + sep + "celery");
    CHECK(result_key("9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10") ==
          "celery-task-meta-9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10");
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
    CHECK(contains(error_of(redelivery_from_unacked("nope")),
                   "unacked entry: the value is not JSON"));
    CHECK(error_of(redelivery_from_unacked(R"([{}, ""])")) ==
          "unacked entry: expected [message, exchange, routing_key], got [{}, \"\"]");
    CHECK(error_of(redelivery_from_unacked(R"([{}, "", ""])")) ==
          "unacked entry: neither an exchange nor a routing key: no queue to restore to");
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

TEST_CASE("celery::result metas") {
  SUBCASE("SUCCESS, byte for byte (monitor2)") {
    CHECK(success_meta("11111111-2222-3333-4444-555555555555",
                       Json::parse(R"({"ok": true, "path": "/data/img.bin", "files": [1, 2, 3],
                                       "score": 0.5})"),
                       at("2026-11-24T14:43:19.754208")) == k_success_meta);
  }
  SUBCASE("FAILURE, byte for byte (monitor2)") {
    const std::string traceback = Json::parse(k_failure_meta)["traceback"];
    CHECK(failure_meta("22222222-2222-3333-4444-555555555555", "ValueError", "builtins",
                       Json::parse(R"(["bad depth", 7])"), traceback,
                       at("2026-11-24T14:43:19.935385")) == k_failure_meta);
    const std::string custom_traceback = Json::parse(k_failure_custom_meta)["traceback"];
    CHECK(failure_meta("33333333-2222-3333-4444-555555555555", "EngineError", "wapp",
                       Json::array({"custom failure"}), custom_traceback,
                       at("2026-11-24T14:43:20.087631")) == k_failure_custom_meta);
  }
  SUBCASE("STARTED, byte for byte (monitor2)") {
    CHECK(started_meta("11111111-2222-3333-4444-555555555555", 15155, "w1@vm") == k_started_meta);
  }
  SUBCASE("REVOKED expired and NotRegistered (docs/celery.md §8)") {
    const TimePoint done = at("2026-11-24T14:43:19.754208");
    CHECK(revoked_meta("99999999-0000-0000-0000-000000000009", "expired", done) ==
          k_revoked_expired);
    CHECK(not_registered_meta("99999999-0000-0000-0000-000000000009", "engine.nope", done) ==
          k_not_registered);
  }
  SUBCASE("an empty traceback is null; date_done drops a zero fraction; defaults to now") {
    const Json j =
        Json::parse(failure_meta("t", "RuntimeError", "builtins", Json::array({"scan failed"}), "",
                                 at("2026-11-24T14:43:19Z")));
    CHECK(j["traceback"].is_null());
    CHECK(j["date_done"] == "2026-11-24T14:43:19");
    const auto before = std::chrono::system_clock::now();
    const Json now = Json::parse(success_meta("t", 1));
    CHECK(at(now["date_done"].get<std::string>()) >= before - 1us);
    CHECK(at(now["date_done"].get<std::string>()) <= std::chrono::system_clock::now());
  }
}

TEST_CASE("celery::parse_result_meta") {
  SUBCASE("SUCCESS") {
    const auto m = parse_result_meta(k_success_meta);
    REQUIRE_MESSAGE(m.has_value(), error_of(m));
    CHECK(m->status == "SUCCESS");
    CHECK(m->ready());
    CHECK(m->result["files"] == Json::parse("[1, 2, 3]"));
    CHECK_FALSE(m->traceback.has_value());
    CHECK(m->date_done == "2026-11-24T14:43:19.754208");
    CHECK(m->task_id == "11111111-2222-3333-4444-555555555555");
    CHECK(m->error_text() == "");
  }
  SUBCASE("FAILURE: the exception as Python prints it") {
    const auto m = parse_result_meta(k_failure_meta).value();
    CHECK(m.ready());
    CHECK(m.error_text() == "ValueError: ('bad depth', 7)");
    REQUIRE(m.traceback.has_value());
    CHECK(m.traceback->ends_with("ValueError: ('bad depth', 7)\n")); // what Python printed
    const auto custom = parse_result_meta(k_failure_custom_meta).value();
    CHECK(custom.error_text() == "EngineError: custom failure");
    CHECK(custom.traceback->ends_with("wapp.EngineError: custom failure\n"));
    CHECK(parse_result_meta(k_not_registered).value().error_text() == "NotRegistered: engine.nope");
  }
  SUBCASE("REVOKED is ready; STARTED, RETRY and PENDING are not") {
    const auto revoked = parse_result_meta(k_revoked_expired).value();
    CHECK(revoked.ready());
    CHECK(revoked.error_text() == "TaskRevokedError: expired");
    const auto started = parse_result_meta(k_started_meta).value();
    CHECK_FALSE(started.ready());
    CHECK(started.result["pid"] == 15155);
    CHECK(started.error_text() == "");
    CHECK_FALSE(parse_result_meta(R"({"status": "RETRY", "result": null})").value().ready());
    CHECK_FALSE(parse_result_meta(R"({"status": "PENDING", "result": null})").value().ready());
  }
  SUBCASE("exception shapes of docs/celery.md §6") {
    const auto text = [](std::string_view result) {
      return parse_result_meta(fmt::format(R"({{"status": "FAILURE", "result": {}}})", result))
          .value()
          .error_text();
    };
    CHECK(text(R"({"exc_type": "RuntimeError", "exc_message": ["scan failed: disk error"],
                   "exc_module": "builtins"})") == "RuntimeError: scan failed: disk error");
    CHECK(text(R"({"exc_type": "ScanError", "exc_message": ["bad header", 17],
                   "exc_module": "engine.errors"})") == "ScanError: ('bad header', 17)");
    CHECK(text(R"({"exc_type": "ValueError", "exc_message": "plain string message"})") ==
          "ValueError: plain string message");
    CHECK(text(R"({"exc_type": "TimeLimitExceeded", "exc_message": [30],
                   "exc_module": "billiard.exceptions"})") == "TimeLimitExceeded: 30");
    CHECK(text(R"({"exc_type": "KeyError", "exc_message": [], "exc_module": "builtins"})") ==
          "KeyError");
    CHECK(text(R"({"exc_type": "E", "exc_message": ["it's", null, true, 1.5]})") ==
          "E: (\"it's\", None, True, 1.5)");
    CHECK(text(R"("not an exception")") == "FAILURE: \"not an exception\"");
  }
  SUBCASE("errors") {
    CHECK(contains(error_of(parse_result_meta("{")), "celery result: the value is not JSON"));
    CHECK(error_of(parse_result_meta("[]")) ==
          "celery result: expected a JSON object, got array []");
    CHECK(error_of(parse_result_meta(R"({"result": 1})")) ==
          "celery result: status is missing or not a string");
    CHECK(error_of(parse_result_meta(R"({"status": "SUCCESS"})")) ==
          "celery result: result is missing");
  }
}

TEST_CASE("celery::isoformat") {
  using namespace std::chrono;
  const TimePoint base = sys_days(year(2026) / November / day(24)) + 14h + 46min + 43s;
  SUBCASE("parse: Celery's forms") {
    CHECK(at("2026-11-24T14:46:43.925252+00:00") == base + 925252us);
    CHECK(at("2026-11-24T14:46:43+00:00") == base);
    CHECK(at("2026-11-24T14:46:43Z") == base);
    CHECK(at("2026-11-24T14:46:43") == base); // naive is UTC
    CHECK(at("2026-11-24 14:46:43.5") == base + 500ms);
    CHECK(at("2026-11-24T16:46:43+02:00") == base);
    CHECK(at("2026-11-24T12:16:43-0230") == base);
    CHECK(at("2026-11-24T15:46:43+01") == base);
    CHECK(at("2026-11-24T14:46") == base - 43s);
    CHECK(at("2026-11-24T14:46:43.123456789Z") == base + 123456789ns);
  }
  SUBCASE("parse errors name the text") {
    CHECK(error_of(parse_isoformat("2026-11-24")) ==
          "\"2026-11-24\" is not an ISO 8601 time (expected "
          "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+hh:mm|+hhmm|+hh])");
    CHECK(contains(error_of(parse_isoformat("2026-02-30T00:00:00")), "no such date"));
    CHECK(contains(error_of(parse_isoformat("2026-11-24T24:00:00")), "time of day out of range"));
    CHECK(contains(error_of(parse_isoformat("2026-11-24T10:00:00+25:00")), "offset out of range"));
    CHECK_FALSE(parse_isoformat("2026-11-24T10:00:00 ").has_value());
    CHECK_FALSE(parse_isoformat("2026-11-24T10:00:00.").has_value());
  }
  SUBCASE("format: Python's isoformat(), microseconds, no zero fraction") {
    CHECK(to_isoformat(base + 925252us) == "2026-11-24T14:46:43.925252+00:00");
    CHECK(to_isoformat(base + 5us) == "2026-11-24T14:46:43.000005+00:00");
    CHECK(to_isoformat(base + 999ns) == "2026-11-24T14:46:43+00:00"); // truncated
    CHECK(to_isoformat(base) == "2026-11-24T14:46:43+00:00");
    CHECK(to_isoformat_naive(base + 754208us) == "2026-11-24T14:46:43.754208");
    CHECK(to_isoformat_naive(base) == "2026-11-24T14:46:43");
    CHECK(to_isoformat(sys_days(year(1969) / December / day(31)) + 23h + 59min + 59s + 1us) ==
          "1969-12-31T23:59:59.000001+00:00");
  }
  SUBCASE("round trip") {
    const TimePoint t = base + 123456us;
    CHECK(at(to_isoformat(t)) == t);
    CHECK(at(to_isoformat_naive(t)) == t);
  }
}

TEST_CASE("celery::to_python_json") {
  CHECK(to_python_json(Json::parse(R"({"a":[1,2.5,"x"],"b":{},"c":[],"d":null,"e":true})")) ==
        R"({"a": [1, 2.5, "x"], "b": {}, "c": [], "d": null, "e": true})");
  CHECK(to_python_json(Json::parse(R"({"z":1,"a":2})")) == R"({"z": 1, "a": 2})"); // order kept
  CHECK(to_python_json("é😀\u007f\n\t\x01\"\\/") == R"("\u00e9\ud83d\ude00\u007f\n\t\u0001\"\\/")");
  CHECK(to_python_json(Json::parse("[1.0, 0.5, 1e16, 1e-05, 123456789012345678, -0.0]")) ==
        "[1.0, 0.5, 1e+16, 1e-05, 123456789012345678, -0.0]");
  CHECK(to_python_json(std::string("a\xff")) == R"("a\ufffd")"); // invalid UTF-8
}

TEST_CASE("celery::saferepr") {
  SUBCASE("as celery renders argsrepr and kwargsrepr (captures)") {
    CHECK(saferepr(Json::parse(R"([{"path": "/data/img.bin", "depth": 2}])")) ==
          "[{'path': '/data/img.bin', 'depth': 2}]");
    CHECK(saferepr(Json::parse(R"({"mode": "fast"})")) == "{'mode': 'fast'}");
    CHECK(saferepr(Json::object()) == "{}");
    CHECK(saferepr(Json::array()) == "[]");
  }
  SUBCASE("scalars; strings single-quoted with only ' escaped") {
    CHECK(saferepr(Json::parse(R"(["it's", "a\"b", "\n\t", 1.0, 1e16, 1e-05, null, true, false,
                                   -3])")) ==
          "['it\\'s', 'a\"b', '\n\t', 1.0, 1e+16, 1e-05, None, True, False, -3]");
  }
  SUBCASE("containers nested deeper than three levels") {
    CHECK(saferepr(Json::parse(R"([[[[1]]], {"k": {"l": {"m": 1}}}])")) ==
          "[[[[...]]], {'k': {'l': {...}}}]");
    CHECK(saferepr(Json::parse("[[[[]]]]")) == "[[[[...]]]]");
  }
  SUBCASE("cut at 1024 characters, as Python's saferepr(x, 1024)") {
    CHECK(saferepr(Json::array({Json::object({{"a", std::string(2000, 'x')}})})) ==
          "[{'a': '" + std::string(1017, 'x') + "...', ...]");
    const std::string words = [] {
      std::string s;
      for (int i = 0; i < 200; ++i) {
        s += "long words ";
      }
      return s;
    }();
    const std::string keyed = saferepr(Json::object({{words, 1}}));
    CHECK(keyed.size() == 1034);
    CHECK(keyed.ends_with(" long words...', ...}"));
    Json numbers = Json::array();
    for (int i = 0; i < 600; ++i) {
      numbers.push_back(i);
    }
    const std::string cut = saferepr(Json::array({numbers}));
    CHECK(cut.size() == 1034);
    CHECK(cut.ends_with(", 224, 225, 22..., ...]]"));
    Json ones = Json::array();
    for (int i = 0; i < 300; ++i) {
      ones.push_back(1);
    }
    CHECK(saferepr(Json::array({ones, Json::array({2, 2})})).size() == 910); // under the limit
  }
  SUBCASE("lengths count code points, as Python does") {
    const std::string e1000 = [] {
      std::string s;
      for (int i = 0; i < 1000; ++i) {
        s += "é";
      }
      return s;
    }();
    CHECK(saferepr(Json::array({e1000})) == "['" + e1000 + "']"); // 1004 < 1024: whole
    // Cut at 1023 code points; the list's "]" is the token dropped at the limit, as in Python.
    CHECK(saferepr(Json::array({e1000 + e1000})) ==
          "['" + e1000 + e1000.substr(0, 46) + "...', ...");
  }
}

TEST_CASE("a number too large for JSON is an error, not an exception") {
  // Found by fuzz_celery: nlohmann's out_of_range escaped and would have ended the worker.
  CHECK_FALSE(pss::celery::parse_envelope("1e999").has_value());
  CHECK_FALSE(pss::celery::parse_result_meta("[1e999]").has_value());
  CHECK_FALSE(pss::celery::redelivery_from_unacked("1e999").has_value());
}

TEST_CASE("an envelope with a NUL byte after its JSON is refused (found by fuzz_celery)") {
  // nlohmann's parser stops at a NUL: the message would have been taken, and its unacked copy
  // could not be restored after its worker died.
  std::string raw(k_scan);
  raw += std::string("\0]", 2);
  CHECK(contains(error_of(parse_envelope(raw)), "a NUL byte at offset"));
  std::string meta = R"({"status": "SUCCESS", "result": 1})";
  meta += '\0';
  CHECK(contains(error_of(parse_result_meta(meta)), "NUL"));
}

// Celery messages and results as Python wrote them, byte for byte: captured with redis-cli
// MONITOR while Debian's python3-celery 5.2.6 / python3-kombu 5.2.4 ran against Redis
// (client_*.py, a real worker, kombu's requeue). The celery unit tests read and write these.
#pragma once

#include "celery/python.hpp"

#include <string_view>

namespace pss::test::captures {

// A time the tests spell in ISO 8601 (valid by construction: value() throws otherwise).
inline celery::TimePoint at(std::string_view iso) {
  return celery::parse_isoformat(iso).value();
}

// redis_lpush_engine_scan.json: send_task('engine.scan', args=[{"path": "/data/img.bin",
// "depth": 2}], task_id='9b1d6c1e-...'), the value of LPUSH celery.
inline constexpr std::string_view k_scan =
    R"json({"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen15113@vm", "ignore_result": false}, "properties": {"correlation_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "reply_to": "a5cd5e66-fb5a-3019-8eb3-c3fdbfcc8a8e", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "9a9f832f-c835-4f1c-b375-215eede8f28b"}})json";

// monitor2: send_task engine.scan (then SUCCESS)
inline constexpr std::string_view k_scan_monitor2 =
    R"json({"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "11111111-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "11111111-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen15158@vm", "ignore_result": false}, "properties": {"correlation_id": "11111111-2222-3333-4444-555555555555", "reply_to": "48bfb36d-6491-3fcb-a6b3-439aa1825c46", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "6d92d96e-7d69-4079-9d89-0c0e668a6db8"}})json";

// monitor2: engine.scan that raises ValueError
inline constexpr std::string_view k_fail_value =
    R"json({"body": "W1t7InBhdGgiOiAiL3giLCAiZGVwdGgiOiA3LCAiZmFpbCI6ICJ2YWx1ZSJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "22222222-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "22222222-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'path': '/x', 'depth': 7, 'fail': 'value'}]", "kwargsrepr": "{}", "origin": "gen15159@vm", "ignore_result": false}, "properties": {"correlation_id": "22222222-2222-3333-4444-555555555555", "reply_to": "ef02347f-83d1-3317-9cf4-72d194e2ca6d", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "51e442e9-4e27-4e21-b7e9-b5aedf68a624"}})json";

// monitor2: engine.scan that raises wapp.EngineError
inline constexpr std::string_view k_fail_custom =
    R"json({"body": "W1t7InBhdGgiOiAiL3giLCAiZmFpbCI6ICJjdXN0b20ifV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "33333333-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "33333333-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'path': '/x', 'fail': 'custom'}]", "kwargsrepr": "{}", "origin": "gen15160@vm", "ignore_result": false}, "properties": {"correlation_id": "33333333-2222-3333-4444-555555555555", "reply_to": "a04c1f82-93d9-3392-b23e-d2c95eb2fd91", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "648a85c2-0c93-431b-a992-53289ca7237b"}})json";

// monitor3: engine.slow, acks_late, the worker is killed
inline constexpr std::string_view k_slow =
    R"json({"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}})json";

// monitor3: HSET unacked of k_slow
inline constexpr std::string_view k_slow_unacked =
    R"json([{"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}}, "", "celery"])json";

// monitor3: RPUSH after the visibility timeout
inline constexpr std::string_view k_slow_restored =
    R"json({"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false, "redelivered": true}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery", "redelivered": true}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}})json";

// monitor3: HSET unacked of the restored message
inline constexpr std::string_view k_slow_restored_unacked =
    R"json([{"body": "W1t7InNsZWVwIjogMzB9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.slow", "id": "44444444-2222-3333-4444-555555555555", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "44444444-2222-3333-4444-555555555555", "parent_id": null, "argsrepr": "[{'sleep': 30}]", "kwargsrepr": "{}", "origin": "gen15242@vm", "ignore_result": false, "redelivered": true}, "properties": {"correlation_id": "44444444-2222-3333-4444-555555555555", "reply_to": "bffcac56-5296-3e7e-867b-f6b1c8e67b13", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery", "redelivered": true}, "priority": 0, "body_encoding": "base64", "delivery_tag": "cc96fa9a-4a88-4b19-9d6a-d160ca3861f0"}}, "", "celery"])json";

// monitor4: priority=5, kwargs, LPUSH celery\x06\x163
inline constexpr std::string_view k_priority5 =
    R"json({"body": "W1t7ImEiOiAxfV0sIHsibW9kZSI6ICJmYXN0In0sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "55555555-0000-0000-0000-000000000005", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "55555555-0000-0000-0000-000000000005", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{'mode': 'fast'}", "origin": "gen15679@vm", "ignore_result": false}, "properties": {"correlation_id": "55555555-0000-0000-0000-000000000005", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 5, "body_encoding": "base64", "delivery_tag": "e705683c-fea6-40fd-bc71-7e2b0b4a4ead"}})json";

// monitor4: countdown=60, expires=300
inline constexpr std::string_view k_eta_expires =
    R"json({"body": "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "66666666-0000-0000-0000-000000000006", "shadow": null, "eta": "2026-11-24T14:46:43.925252+00:00", "expires": "2026-11-24T14:50:43.925252+00:00", "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "66666666-0000-0000-0000-000000000006", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{}", "origin": "gen15679@vm", "ignore_result": false}, "properties": {"correlation_id": "66666666-0000-0000-0000-000000000006", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "expiration": "300000", "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "2e07c287-976b-48bf-bb49-03eeb9795d61"}})json";

// monitor4: queue='engine'
inline constexpr std::string_view k_queue_engine =
    R"json({"body": "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "77777777-0000-0000-0000-000000000007", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "77777777-0000-0000-0000-000000000007", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{}", "origin": "gen15679@vm", "ignore_result": false}, "properties": {"correlation_id": "77777777-0000-0000-0000-000000000007", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "engine"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "e10444c9-e05d-4bfb-843c-ce5810844bf9"}})json";

// monitor4: time_limit=30, soft_time_limit=20, ignore_result
inline constexpr std::string_view k_limits_ignore =
    R"json({"body": "W1t7ImEiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "88888888-0000-0000-0000-000000000008", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [30, 20], "root_id": "88888888-0000-0000-0000-000000000008", "parent_id": null, "argsrepr": "[{'a': 1}]", "kwargsrepr": "{}", "origin": "gen15679@vm", "ignore_result": true}, "properties": {"correlation_id": "88888888-0000-0000-0000-000000000008", "reply_to": "8b2a5a24-fdf9-3282-97cd-a338dc9b8b10", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "9bec5f0c-8a87-4846-8cd0-8f53b25f9c12"}})json";

// monitor5: engine.scan with a worker running -E
inline constexpr std::string_view k_events_scan =
    R"json({"body": "W1t7InBhdGgiOiAiL2UiLCAiZGVwdGgiOiAxfV0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "aaaaaaaa-0000-0000-0000-00000000000a", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "aaaaaaaa-0000-0000-0000-00000000000a", "parent_id": null, "argsrepr": "[{'path': '/e', 'depth': 1}]", "kwargsrepr": "{}", "origin": "gen15706@vm", "ignore_result": false}, "properties": {"correlation_id": "aaaaaaaa-0000-0000-0000-00000000000a", "reply_to": "d03d6fa3-6499-3117-90f1-ec7f91845002", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "6fdfc65c-0ce7-438a-b57d-5e61ab02acc9"}})json";

// monitor5: a pidbox reply (not a task)
inline constexpr std::string_view k_pidbox_reply =
    R"json({"body": "eyJ3NkB2bSI6IHsib2siOiAicG9uZyJ9fQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"ticket": "89aab9e6-1333-4e8e-80e0-78b84d3f04d0", "clock": 3}, "properties": {"delivery_mode": 1, "delivery_info": {"exchange": "reply.celery.pidbox", "routing_key": "da96d494-0e3c-3fd1-922f-7ff11723c05b"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "dc4da147-2248-41d1-9858-0b3fbcfa19c3"}})json";

// monitor6: HSET unacked, then message.requeue()
inline constexpr std::string_view k_requeue_unacked =
    R"json([{"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen16836@vm", "ignore_result": false}, "properties": {"correlation_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "reply_to": "f90cd679-cbe7-3b8c-8581-d46de4ede3ac", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "8ec2cc8a-f4dc-4789-b8ea-a4e5d649ee1a"}}, "", "celery"])json";

// monitor6: the LPUSH of the requeue
inline constexpr std::string_view k_requeued =
    R"json({"body": "W1t7InBhdGgiOiAiL2RhdGEvaW1nLmJpbiIsICJkZXB0aCI6IDJ9XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "engine.scan", "id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "parent_id": null, "argsrepr": "[{'path': '/data/img.bin', 'depth': 2}]", "kwargsrepr": "{}", "origin": "gen16836@vm", "ignore_result": false, "redelivered": true}, "properties": {"correlation_id": "9b1d6c1e-2f0a-4c5e-8a51-2d1c7e3f4a10", "reply_to": "f90cd679-cbe7-3b8c-8581-d46de4ede3ac", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery", "redelivered": true}, "priority": 0, "body_encoding": "base64", "delivery_tag": "8ec2cc8a-f4dc-4789-b8ea-a4e5d649ee1a"}})json";

// monitor2: SETEX STARTED
inline constexpr std::string_view k_started_meta =
    R"json({"status": "STARTED", "result": {"pid": 15155, "hostname": "w1@vm"}, "traceback": null, "children": [], "date_done": null, "task_id": "11111111-2222-3333-4444-555555555555"})json";

// monitor2: SETEX SUCCESS
inline constexpr std::string_view k_success_meta =
    R"json({"status": "SUCCESS", "result": {"ok": true, "path": "/data/img.bin", "files": [1, 2, 3], "score": 0.5}, "traceback": null, "children": [], "date_done": "2026-11-24T14:43:19.754208", "task_id": "11111111-2222-3333-4444-555555555555"})json";

// monitor2: SETEX FAILURE ValueError
inline constexpr std::string_view k_failure_meta =
    R"json({"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["bad depth", 7], "exc_module": "builtins"}, "traceback": "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 451, in trace_task\n    R = retval = fun(*args, **kwargs)\n                 ^^^^^^^^^^^^^^^^^^^^\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 734, in __protected_call__\n    return self.run(*args, **kwargs)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/srv/lab/wapp.py\", line 15, in scan\n    raise ValueError('bad depth', job.get('depth'))\nValueError: ('bad depth', 7)\n", "children": [], "date_done": "2026-11-24T14:43:19.935385", "task_id": "22222222-2222-3333-4444-555555555555"})json";

// monitor2: SETEX FAILURE wapp.EngineError
inline constexpr std::string_view k_failure_custom_meta =
    R"json({"status": "FAILURE", "result": {"exc_type": "EngineError", "exc_message": ["custom failure"], "exc_module": "wapp"}, "traceback": "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 451, in trace_task\n    R = retval = fun(*args, **kwargs)\n                 ^^^^^^^^^^^^^^^^^^^^\n  File \"/usr/lib/python3/dist-packages/celery/app/trace.py\", line 734, in __protected_call__\n    return self.run(*args, **kwargs)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/srv/lab/wapp.py\", line 17, in scan\n    raise EngineError('custom failure')\nwapp.EngineError: custom failure\n", "children": [], "date_done": "2026-11-24T14:43:20.087631", "task_id": "33333333-2222-3333-4444-555555555555"})json";

// docs/celery.md §8 (shapes checked against Python), with a task id and a date filled in.
inline constexpr std::string_view k_revoked_expired =
    R"json({"status": "REVOKED", "result": {"exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"}, "traceback": null, "children": [], "date_done": "2026-11-24T14:43:19.754208", "task_id": "99999999-0000-0000-0000-000000000009"})json";
inline constexpr std::string_view k_not_registered =
    R"json({"status": "FAILURE", "result": {"exc_type": "NotRegistered", "exc_message": ["engine.nope"], "exc_module": "celery.exceptions"}, "traceback": null, "children": [], "date_done": "2026-11-24T14:43:19.754208", "task_id": "99999999-0000-0000-0000-000000000009"})json";

} // namespace pss::test::captures

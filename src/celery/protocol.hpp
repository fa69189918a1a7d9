// Celery protocol v2 over Redis, as Celery 5.2 and kombu 5.2 write and read it: Redis key names,
// task envelopes (parsed for a worker, built for a client), the values of kombu's "unacked" ack
// emulation, and result-backend values. Pure: no I/O. Only fresh_stamp(), anon_nodename() and
// the overloads and defaults that call them (or system_clock::now()) read the random device, the
// clock, the pid or the host name; tests pass those values in instead.
//
// Sources: celery/celery@v5.2.6 celery/app/amqp.py (as_task_v2), celery/backends/base.py
// (_get_result_meta, prepare_exception); celery/kombu@v5.2.4 kombu/transport/redis.py (QoS,
// _q_for_pri, _do_restore_message), kombu/transport/virtual/base.py (prepare_message,
// _inplace_augment_message, Message).
//
// JSON is written as Python's json.dumps() writes it (", " and ": ", \u escapes for non-ASCII,
// keys in insertion order), so what this side sends diffs cleanly against Python's. Python
// parses any valid JSON, so this is for readability of captures, not a requirement.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::celery {

// JSON that keeps key order, as Python dicts do: a message re-sent is the message received, and
// kwargs reach the task in the order the client wrote them. (nlohmann::json converts to it.)
using Json = nlohmann::ordered_json;
using TimePoint = std::chrono::system_clock::time_point;

// --- Redis names ----------------------------------------------------------------------------

// kombu's separator inside Redis key names and binding members.
inline constexpr std::string_view k_sep = "\x06\x16";
// kombu's ack-emulation keys: HASH delivery_tag → [message, exchange, routing_key]; ZSET
// delivery_tag scored by delivery time (UNIX seconds); the lock held while restoring.
inline constexpr std::string_view k_unacked_key = "unacked";
inline constexpr std::string_view k_unacked_index_key = "unacked_index";
inline constexpr std::string_view k_unacked_mutex_key = "unacked_mutex";
// kombu defaults: a delivery not acked after this long is restored to its queue; the restore
// lock expires after this long.
inline constexpr std::chrono::seconds k_visibility_timeout{3600};
inline constexpr std::chrono::seconds k_unacked_mutex_expire{300};
// Celery's result_expires default: results are stored with SETEX for this long.
inline constexpr std::chrono::seconds k_result_expires{86400};

// The Redis lists of a queue in BRPOP order: {"q", "q\x06\x163", "q\x06\x166", "q\x06\x169"}.
// On Redis a lower priority number is served first.
std::vector<std::string> priority_lists(std::string_view queue);
// The list a message of this priority goes to: 0-2 → "q", 3-5 → "q\x06\x163", 6-8 →
// "q\x06\x166", 9 → "q\x06\x169" (kombu's steps [0, 3, 6, 9]); out-of-range priorities are
// clamped to 0..9.
std::string list_for_priority(std::string_view queue, int priority);
// The queue a BRPOP'ed list belongs to: everything before the last k_sep (kombu's
// rsplit(sep, 1)[0]); a name without k_sep is returned as is.
std::string queue_of_list(std::string_view list);
// The binding SET of a queue, "_kombu.binding.q", and the member a client or worker SADDs to it
// for the default direct binding: "q\x06\x16\x06\x16q" (routing key, empty pattern, queue).
std::string binding_key(std::string_view queue);
std::string binding_member(std::string_view queue);
// The queues a direct exchange routes `routing_key` to, given the members of its binding SET
// (SMEMBERS binding_key(exchange)); members that are not "key\x06\x16pattern\x06\x16queue" are
// skipped. First-seen order, no duplicates.
std::vector<std::string> bound_queues(const std::vector<std::string>& members,
                                      std::string_view routing_key);
// The result key (and pub/sub channel) of a task: "celery-task-meta-<id>".
std::string result_key(std::string_view task_id);

// --- Receiving a task (worker side) ---------------------------------------------------------

// What a worker needs from a received envelope.
struct TaskMessage {
  std::string id;   // headers.id
  std::string task; // headers.task: the worker dispatches on it
  Json args = Json::array();
  Json kwargs = Json::object();
  Json embed; // {"callbacks", "errbacks", "chain", "chord"} or null; canvas is not supported
  std::optional<TimePoint> eta;          // run no earlier than this
  std::optional<TimePoint> expires;      // past this on receipt: store REVOKED "expired", ack
  std::optional<double> time_limit;      // headers.timelimit[0] (hard), seconds
  std::optional<double> soft_time_limit; // headers.timelimit[1]
  bool ignore_result = false;            // store no result at all
  int retries = 0;
  std::string delivery_tag; // properties.delivery_tag: the key in the unacked HASH
  std::string exchange;     // properties.delivery_info.exchange ("" from Celery clients)
  std::string routing_key;  // properties.delivery_info.routing_key (the queue)
  bool redelivered = false; // restored after a requeue or a visibility timeout
  std::string raw;          // the envelope exactly as received (for the unacked HASH)
};

// Parses an envelope popped from a Redis list: a JSON object whose body is base64
// (properties.body_encoding "base64") or the JSON text itself (no body_encoding), with
// content-type application/json, encoding utf-8 (or none), no compression, and a body
// [args (list), kwargs (object), embed (object or null)]. headers.id, headers.task,
// properties.delivery_tag and properties.delivery_info.{exchange, routing_key} are required
// (kombu cannot ack without them); eta/expires must be ISO 8601 when present.
// Error, naming what is wrong, for anything else: the worker then drops the message (acks it,
// stores no result), as a Python worker does.
Result<TaskMessage> parse_envelope(std::string_view raw);

// The unacked HASH value of a delivery: [message, exchange, routing_key], the message verbatim.
std::string unacked_value(const TaskMessage& m);

// A message to put back on a queue (reject with requeue, visibility timeout, shutdown).
struct Redelivery {
  // The list to push to: the routing key when the exchange is "" (always, for Celery clients).
  // Empty for another exchange: resolve with SMEMBERS binding_key(exchange) and bound_queues();
  // kombu drops the message when that finds nothing.
  std::string queue;
  std::string exchange;
  std::string routing_key;
  // The message with headers.redelivered = true and properties.delivery_info.redelivered = true
  // appended (each only where its object exists), as kombu's _do_restore_message writes it.
  std::string message;
};
// From an unacked HASH value (JSON [message, exchange, routing_key]). Restores go to the base
// list (not a priority list): LPUSH for a requeue (runs last), RPUSH for a timed-out delivery
// (runs next), as kombu does. Error if the value is not such a triple, or has neither an
// exchange nor a routing key.
Result<Redelivery> redelivery_from_unacked(std::string_view unacked_json);

// --- Sending a task (client side) -----------------------------------------------------------

struct SendOptions {
  std::string queue = "celery";     // also the routing key; exchange is ""
  int priority = 0;                 // 0..9, 0 first; LPUSH to list_for_priority()
  std::optional<TimePoint> eta;     // headers.eta
  std::optional<TimePoint> expires; // headers.expires and properties.expiration
  std::optional<double> time_limit; // headers.timelimit [hard, soft], seconds
  std::optional<double> soft_time_limit;
  bool ignore_result = false; // the worker stores no result; do not wait for one
  std::string origin;         // "" → anon_nodename()
};

// What make_envelope() would otherwise generate; fixed in tests.
struct EnvelopeStamp {
  std::string delivery_tag; // a fresh uuid4 per message
  std::string reply_to;     // a uuid for the process (Python: app.thread_oid); unused by Redis
  TimePoint now;            // properties.expiration = expires - now, in whole milliseconds
};
// A stamp with a fresh uuid4 delivery tag, the process's reply_to uuid and the current time.
EnvelopeStamp fresh_stamp();

// "gen<pid>@<hostname>", Celery's anon_nodename(): the origin header of a client.
std::string anon_nodename();

// The envelope Python's app.send_task(task_name, args, kwargs, task_id=task_id, ...) LPUSHes,
// with the same keys in the same order: headers (lang "py", root_id = task_id, timelimit,
// argsrepr/kwargsrepr as celery's saferepr() renders them, origin, ...), properties
// (correlation_id = task_id, reply_to, delivery_mode 2, "expiration" only with expires,
// delivery_info {"exchange": "", "routing_key": queue}, priority, body_encoding "base64",
// delivery_tag) and the body: base64 of [args, kwargs, {"callbacks": null, "errbacks": null,
// "chain": null, "chord": null}]. null args/kwargs count as []/{}; other non-list args or
// non-object kwargs throw std::invalid_argument (Python raises TypeError).
std::string make_envelope(const std::string& task_id, const std::string& task_name,
                          const Json& args, const Json& kwargs, const SendOptions& opts);
std::string make_envelope(const std::string& task_id, const std::string& task_name,
                          const Json& args, const Json& kwargs, const SendOptions& opts,
                          const EnvelopeStamp& stamp);

// --- AMQP (RabbitMQ) -------------------------------------------------------------------------

// A task message as AMQP carries it (WIRE.md §7): the body is the raw JSON text, the rest are
// native basic properties, and the headers (a field table on the wire; amqp.cpp converts) are
// the same object as in the Redis envelope.
struct AmqpMessage {
  std::string body; // [args, kwargs, embed] as JSON text
  std::string content_type = "application/json";
  std::string content_encoding = "utf-8";
  Json headers = Json::object();
  int delivery_mode = 2; // persistent
  int priority = 0;      // 0..255; higher first, and only on a queue with x-max-priority
  std::string correlation_id;
  std::string reply_to;
  std::optional<std::string> expiration; // a message TTL in milliseconds, as text
};
// What basic.deliver says about a message: the broker's own tag (here as text), where it came
// from, and whether it was delivered before.
struct AmqpDelivery {
  std::string tag;
  std::string exchange;
  std::string routing_key;
  bool redelivered = false;
};

// What Python's send_task() publishes on an AMQP broker: the headers, correlation_id, reply_to,
// delivery_mode and expiration of make_envelope(), the body as plain JSON. Throws as
// make_envelope() does.
AmqpMessage make_amqp_message(const std::string& task_id, const std::string& task_name,
                              const Json& args, const Json& kwargs, const SendOptions& opts);
AmqpMessage make_amqp_message(const std::string& task_id, const std::string& task_name,
                              const Json& args, const Json& kwargs, const SendOptions& opts,
                              const EnvelopeStamp& stamp);
// A delivered message as a task: the same checks and errors as parse_envelope() (content type,
// encoding, headers, body), the delivery from basic.deliver. TaskMessage::raw stays empty.
Result<TaskMessage> parse_amqp_message(const AmqpMessage& msg, AmqpDelivery delivery);

// --- Results (worker writes, client reads) ---------------------------------------------------

inline constexpr std::string_view k_pending = "PENDING";
inline constexpr std::string_view k_started = "STARTED";
inline constexpr std::string_view k_success = "SUCCESS";
inline constexpr std::string_view k_failure = "FAILURE";
inline constexpr std::string_view k_retry = "RETRY";
inline constexpr std::string_view k_revoked = "REVOKED";

// Result-backend values: {"status", "result", "traceback", "children": [], "date_done",
// "task_id"}, for SETEX result_key(id) k_result_expires and PUBLISH on the same name.
// date_done is naive UTC with microseconds, as Python's datetime.utcnow().isoformat().
// SUCCESS with the task's return value.
std::string success_meta(const std::string& task_id, const Json& result,
                         TimePoint date_done = std::chrono::system_clock::now());
// FAILURE with {"exc_type", "exc_message": exc_args, "exc_module"}; exc_args should be the list
// of the exception's arguments (a client raises exc_module.exc_type(*exc_args); use
// "builtins" and a builtin type, e.g. RuntimeError, to get that exact class). An empty
// traceback is stored as null.
std::string failure_meta(const std::string& task_id, std::string_view exc_type,
                         std::string_view exc_module, const Json& exc_args,
                         std::string_view traceback,
                         TimePoint date_done = std::chrono::system_clock::now());
// REVOKED with celery.exceptions.TaskRevokedError(why): why is "expired" or "revoked".
std::string revoked_meta(const std::string& task_id, std::string_view why,
                         TimePoint date_done = std::chrono::system_clock::now());
// FAILURE with celery.exceptions.NotRegistered(task_name): the task is not known here.
std::string not_registered_meta(const std::string& task_id, std::string_view task_name,
                                TimePoint date_done = std::chrono::system_clock::now());
// STARTED with {"pid", "hostname"} and date_done null (only with task_track_started).
std::string started_meta(const std::string& task_id, long pid, std::string_view hostname);

// A result-backend value as read by a client.
struct ResultMeta {
  std::string status;
  Json result; // the return value, or {"exc_type", "exc_message", "exc_module"}
  std::optional<std::string> traceback;
  std::optional<std::string> date_done;
  std::string task_id; // "" when absent

  // SUCCESS, FAILURE or REVOKED: the client stops waiting.
  bool ready() const;
  // For FAILURE, RETRY and REVOKED, the exception as Python prints its last line:
  // "RuntimeError: scan failed", "ValueError: ('bad depth', 7)", "TaskRevokedError: expired";
  // the status and the result's JSON when the result is not an exception. "" for other states.
  std::string error_text() const;
};
// Error if not a JSON object with a string "status" and a "result" member.
Result<ResultMeta> parse_result_meta(std::string_view json);

// --- Python renderings ----------------------------------------------------------------------

// ISO 8601 as Celery reads it (eta, expires): "YYYY-MM-DDTHH:MM[:SS[.fraction]]" (T or space),
// then "Z", "+hh:mm", "+hhmm", "+hh" or nothing (UTC). Error names the text and what is wrong.
Result<TimePoint> parse_isoformat(std::string_view text);
// Python's aware-UTC isoformat(): "2026-11-24T14:46:43.925252+00:00", the fraction (truncated
// to microseconds) omitted when zero.
std::string to_isoformat(TimePoint t);
// Python's naive utcnow().isoformat(): the same without "+00:00" (result date_done).
std::string to_isoformat_naive(TimePoint t);

// Python's json.dumps(value) with default options. Invalid UTF-8 in strings becomes U+FFFD.
std::string to_python_json(const Json& value);
// celery.utils.saferepr.saferepr(value, maxlen, maxlevels=3), the argsrepr/kwargsrepr of a task
// message: Python reprs of lists and dicts, strings in single quotes with only ' escaped
// (newlines stay raw), containers nested deeper than three levels as "[...]", and output
// beyond maxlen (in code points) cut with "...", as Python cuts it.
std::string saferepr(const Json& value, std::size_t maxlen = 1024);

} // namespace pss::celery

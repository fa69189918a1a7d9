// Celery protocol v2 task messages, as Celery 5.2 writes and reads them: the envelope a Redis
// broker carries (parsed for a worker, built for a client) and the same message as AMQP
// carries it. Pure: only fresh_stamp(), anon_nodename() and the overloads that call them read
// the random device, the clock, the pid or the host name; tests pass those values in instead.
// (docs/celery.md §2, §5)
#pragma once

#include "celery/python.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::celery {

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

// A task message as AMQP carries it (docs/celery.md §5): the body is the raw JSON text, the rest
// are native basic properties, and the headers (a field table on the wire; amqp.cpp converts) are
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

} // namespace pss::celery

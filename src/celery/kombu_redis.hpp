// kombu's Redis transport, as kombu 5.2 lays it out: the lists of a queue by priority, the
// binding sets of exchanges, and the "unacked" hash, index and mutex of its ack emulation
// (visibility timeout, redelivery). Pure: names and values; redis_broker.cpp does the I/O.
// (docs/celery.md §3, §4)
#pragma once

#include "celery/envelope.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace pss::celery {

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

} // namespace pss::celery

// An AMQP 0-9-1 connection (RabbitMQ) for the Celery broker, over librabbitmq (rabbitmq-c):
// one connection, one channel, owned by one thread (the library is not thread-safe). Every
// call is bounded by the connection's timeout; a failed connection says so (broken()) and is
// reconnected by its owner. librabbitmq's types stay in amqp.cpp.
#pragma once

#include "celery/envelope.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pss::celery {

// amqp://[user[:password]@]host[:port][/vhost], as kombu reads it: guest:guest, port 5672,
// vhost "/" when the path is empty or "/" ("amqp://h//" is vhost "/" too); user, password
// and vhost are percent-decoded. "pyamqp://" is the same; "amqps://" is refused.
struct AmqpUrl {
  std::string host = "localhost";
  std::uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  std::string describe() const; // amqp://user@host:port/vhost, without the password
};
Result<AmqpUrl> parse_amqp_url(std::string_view url);
// True for the URL schemes parse_amqp_url() takes.
bool is_amqp_url(std::string_view url);

// A message received by basic.consume: the task's parts and the broker's delivery.
struct AmqpReceived {
  AmqpMessage message;
  std::uint64_t tag = 0;
  AmqpDelivery delivery; // delivery.tag left empty: the owner names it
};

class Amqp {
public:
  // Connects, logs in and opens channel 1 within `timeout`, which then bounds every call.
  // `heartbeat`: seconds (0 = none); serviced while the owner waits in next().
  static Result<Amqp> connect(const AmqpUrl& url, std::chrono::milliseconds timeout,
                              int heartbeat = 30);
  Amqp(Amqp&&) noexcept;
  Amqp& operator=(Amqp&&) noexcept;
  ~Amqp();

  // Celery's default topology for `queue` (docs/celery.md §5), declared exactly as kombu declares
  // it (any difference closes the channel with 406 PRECONDITION_FAILED): exchange `queue`, direct,
  // durable; queue `queue`, durable; binding with routing key `queue`.
  Result<void> declare_queue(const std::string& queue);
  // Publisher confirms on the channel: from now on publish() returns only once the broker
  // has taken the message (persisted it, for a durable queue and delivery_mode 2).
  Result<void> confirm_select();
  // basic.publish to the default exchange with routing key `queue`; with confirms, waits for
  // the broker's basic.ack (a basic.nack is an Error).
  Result<void> publish(const std::string& queue, const AmqpMessage& m);
  // basic.qos(prefetch, global) then basic.consume(queue, no_ack = false).
  Result<void> consume(const std::string& queue, std::uint16_t prefetch);
  // The next delivery within `wait`: nullopt if none came. Error when the connection or the
  // channel was closed (a delivery's reason is in the message).
  Result<std::optional<AmqpReceived>> next(std::chrono::milliseconds wait);
  Result<void> ack(std::uint64_t tag);
  Result<void> reject(std::uint64_t tag, bool requeue);
  bool broken() const { return m_broken; }

  struct State;

private:
  explicit Amqp(std::unique_ptr<State> s);
  Error fail(std::string_view what);
  std::unique_ptr<State> m_state;
  bool m_broken = false;
};

// Headers as py-amqp writes them into a field table and reads them back (for tests): str →
// longstr, None → void, bool, int → int32 (int64 when out of range), float → double, list →
// array, dict → table; encoded to the wire format and decoded again.
Result<Json> amqp_table_round_trip(const Json& headers);

} // namespace pss::celery

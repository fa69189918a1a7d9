#include "celery/broker.hpp"

namespace pss::celery {

Result<BrokerUrl> parse_broker_url(std::string_view url) {
  if (is_amqp_url(url)) {
    return BrokerUrl(PSS_TRY(parse_amqp_url(url)));
  }
  if (url.starts_with("redis://") || url.starts_with("unix://")) {
    return BrokerUrl(PSS_TRY(parse_redis_url(url)));
  }
  return make_error("broker URL '" + std::string(url) +
                    "': unknown scheme (redis://, unix:// or amqp://)");
}

std::string describe(const BrokerUrl& url) {
  return std::visit([](const auto& u) { return u.describe(); }, url);
}

std::unique_ptr<Consumer> make_consumer(const BrokerUrl& url, ConsumerOptions opts) {
  if (const auto* redis = std::get_if<RedisUrl>(&url)) {
    return detail::make_redis_consumer(*redis, std::move(opts));
  }
  return detail::make_amqp_consumer(std::get<AmqpUrl>(url), std::move(opts));
}

std::unique_ptr<Publisher> make_publisher(const BrokerUrl& url) {
  if (const auto* redis = std::get_if<RedisUrl>(&url)) {
    return detail::make_redis_publisher(*redis);
  }
  return detail::make_amqp_publisher(std::get<AmqpUrl>(url));
}

} // namespace pss::celery

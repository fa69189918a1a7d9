// The fleet's cache: one Redis shared by every host (a key per entry, with Redis's own expiry).
// Redis down or slow never stops a scan: a failed call is a miss or a dropped write, the
// connection is tried again with back-off (100 ms doubling to 30 s; calls in between do not
// wait), and the fault is a warning a minute at most.
#pragma once

#include "cache/store.hpp"
#include "util/error.hpp"

#include <memory>
#include <string>

namespace pss::cache {

class RedisStore final : public Store {
public:
  // Error only for a URL that cannot be read; an unreachable server is a warning (and retried).
  static Result<std::unique_ptr<RedisStore>> open(const std::string& url);
  ~RedisStore() override;

  std::optional<Entry> get(const std::string& key) override;
  void put(const std::string& key, const std::string& value, std::chrono::seconds ttl) override;
  std::string where() const override;

  struct Impl;

private:
  explicit RedisStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace pss::cache

// Where cached answers live: a key (cache/key.hpp) → the engine's answer as JSON, with the
// time it was stored and an expiry. Two stores: SQLite on one host (sqlite_store.hpp), Redis
// for a fleet. A store never fails a scan: faults are logged (rate-limited) and the call acts as
// a miss or a dropped write.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace pss::cache {

struct Entry {
  std::string value;      // the answer's JSON
  std::int64_t stored_at; // Unix seconds
};

class Store {
public:
  virtual ~Store() = default;
  // The live entry of `key`, if any (an expired one is a miss).
  virtual std::optional<Entry> get(const std::string& key) = 0;
  // Stores (or replaces) the entry; kept `ttl` from now.
  virtual void put(const std::string& key, const std::string& value, std::chrono::seconds ttl) = 0;
  // "sqlite:/path" or "redis://host:port/db": for logs and errors.
  virtual std::string where() const = 0;
};

} // namespace pss::cache

// A Redis connection for the Celery broker and result backend, over hiredis (blocking API:
// each thread that talks to Redis owns its connection). Every call is bounded by the
// connection's timeout; a failed connection reports it and is reconnected by its owner.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;

namespace pss::celery {

// redis://[[user]:password@]host[:port][/db] or unix:///path/to.sock[?db=N]
struct RedisUrl {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string unix_path;
  std::string password;
  int db = 0;
  std::string describe() const; // without the password
};
Result<RedisUrl> parse_redis_url(std::string_view url);

struct Reply {
  enum class Type { nil, string, integer, array, status, error };
  Type type = Type::nil;
  std::string str; // string, status, error
  long long integer = 0;
  std::vector<Reply> elements;
  bool is_nil() const { return type == Type::nil; }
};

class Redis {
public:
  // Connects (and AUTH, SELECT) within `timeout`, which then bounds every call.
  static Result<Redis> connect(const RedisUrl& url, std::chrono::milliseconds timeout);
  Redis(Redis&&) noexcept;
  Redis& operator=(Redis&&) noexcept;
  ~Redis();

  // One command; Error for I/O failures (the connection is then unusable) and for Redis
  // error replies.
  Result<Reply> command(const std::vector<std::string>& args);
  // MULTI, the commands, EXEC, pipelined: the EXEC reply's elements.
  Result<std::vector<Reply>> transaction(const std::vector<std::vector<std::string>>& cmds);
  // The next pushed reply (pub/sub) within `wait`: nullopt if none came; Error on failure.
  Result<std::optional<Reply>> poll_reply(std::chrono::milliseconds wait);
  // Sends without reading the replies (SUBSCRIBE on a pub/sub connection).
  Result<void> send(const std::vector<std::string>& args);
  void set_timeout(std::chrono::milliseconds timeout);
  bool broken() const { return m_broken; }

private:
  explicit Redis(redisContext* ctx) : m_ctx(ctx) {}
  Error io_error(std::string_view what);
  redisContext* m_ctx = nullptr;
  bool m_broken = false;
};

} // namespace pss::celery

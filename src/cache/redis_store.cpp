#include "cache/redis_store.hpp"

#include "celery/redis.hpp"
#include "util/log.hpp"

#include <charconv>
#include <ctime>
#include <mutex>

namespace pss::cache {

namespace {

constexpr auto k_timeout = std::chrono::milliseconds(1000); // connect, and each call
constexpr auto k_first_backoff = std::chrono::milliseconds(100);
constexpr auto k_max_backoff = std::chrono::seconds(30);
constexpr auto k_warn_every = std::chrono::minutes(1);
constexpr std::string_view k_prefix = "pss:result:";

using Clock = std::chrono::steady_clock;

} // namespace

struct RedisStore::Impl {
  celery::RedisUrl url;
  std::string text; // for messages, without the password
  std::optional<celery::Redis> conn;
  Clock::time_point next_try{};
  std::chrono::milliseconds backoff = k_first_backoff;
  Clock::time_point last_warning{};
  bool warned_once = false;
  bool was_down = false;
  std::mutex mutex;

  void warn(const std::string& what) {
    const auto now = Clock::now();
    if (warned_once && now - last_warning < k_warn_every) {
      return;
    }
    warned_once = true;
    last_warning = now;
    log::get("cache")->warn("result cache {}: {} (scans go on without it; retrying)", text, what);
  }

  // A usable connection, or none while the back-off lasts.
  celery::Redis* connection() {
    if (conn && !conn->broken()) {
      return &*conn;
    }
    conn.reset();
    if (Clock::now() < next_try) {
      return nullptr;
    }
    auto c = celery::Redis::connect(url, k_timeout);
    if (!c) {
      failed(c.error().message);
      return nullptr;
    }
    conn.emplace(std::move(*c));
    if (was_down) {
      log::get("cache")->info("result cache {}: reachable again", text);
      was_down = false;
    }
    backoff = k_first_backoff;
    return &*conn;
  }

  void failed(const std::string& why) {
    conn.reset();
    was_down = true;
    next_try = Clock::now() + backoff;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, k_max_backoff);
    warn(why);
  }
};

RedisStore::RedisStore(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
RedisStore::~RedisStore() = default;

Result<std::unique_ptr<RedisStore>> RedisStore::open(const std::string& url) {
  auto u = celery::parse_redis_url(url);
  if (!u) {
    return make_error("--cache: " + u.error().message);
  }
  auto impl = std::make_unique<Impl>();
  impl->url = *u;
  impl->text = u->describe();
  {
    std::lock_guard lock(impl->mutex);
    (void)impl->connection(); // says at once when it is not reachable
  }
  return std::unique_ptr<RedisStore>(new RedisStore(std::move(impl)));
}

std::optional<Entry> RedisStore::get(const std::string& key) {
  std::lock_guard lock(m_impl->mutex);
  auto* c = m_impl->connection();
  if (c == nullptr) {
    return std::nullopt;
  }
  auto r = c->command({"GET", std::string(k_prefix) + key});
  if (!r) {
    m_impl->failed(r.error().message);
    return std::nullopt;
  }
  if (r->type != celery::Reply::Type::string) {
    return std::nullopt;
  }
  // "<stored_at> <value>"
  const std::string& s = r->str;
  const auto sp = s.find(' ');
  std::int64_t stored_at = 0;
  if (sp == std::string::npos ||
      std::from_chars(s.data(), s.data() + sp, stored_at).ec != std::errc()) {
    return std::nullopt; // not ours: a miss, replaced by the next answer
  }
  return Entry{s.substr(sp + 1), stored_at};
}

void RedisStore::put(const std::string& key, const std::string& value, std::chrono::seconds ttl) {
  std::lock_guard lock(m_impl->mutex);
  auto* c = m_impl->connection();
  if (c == nullptr) {
    return;
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  auto r = c->command({"SET", std::string(k_prefix) + key, std::to_string(now) + " " + value, "EX",
                       std::to_string(std::max<long long>(1, ttl.count()))});
  if (!r) {
    m_impl->failed(r.error().message);
  }
}

std::string RedisStore::where() const {
  return m_impl->text;
}

} // namespace pss::cache

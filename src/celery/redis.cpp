#include "celery/redis.hpp"

#include <cerrno>
#include <charconv>
#include <hiredis/hiredis.h>
#include <poll.h>

namespace pss::celery {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
  case REDIS_REPLY_STRING:
    out.type = Reply::Type::string;
    out.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_STATUS:
    out.type = Reply::Type::status;
    out.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_ERROR:
    out.type = Reply::Type::error;
    out.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_INTEGER:
    out.type = Reply::Type::integer;
    out.integer = r->integer;
    break;
  case REDIS_REPLY_ARRAY:
    out.type = Reply::Type::array;
    for (std::size_t i = 0; i < r->elements; ++i) {
      out.elements.push_back(convert(r->element[i]));
    }
    break;
  default:
    out.type = Reply::Type::nil;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

// A command's arguments as hiredis takes them: pointers and lengths (binary-safe).
struct Argv {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  explicit Argv(const std::vector<std::string>& args) {
    for (const auto& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int count() const { return static_cast<int>(ptrs.size()); }
};

std::string_view first_word(const std::vector<std::string>& args) {
  return args.empty() ? std::string_view("?") : std::string_view(args.front());
}

} // namespace

std::string RedisUrl::describe() const {
  if (!unix_path.empty()) {
    return "unix://" + unix_path + "?db=" + std::to_string(db);
  }
  return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Result<RedisUrl> parse_redis_url(std::string_view url) {
  RedisUrl u;
  auto bad = [&](const std::string& why) {
    return make_error("bad Redis URL '" + std::string(url) + "': " + why);
  };
  if (url.rfind("unix://", 0) == 0) {
    std::string_view rest = url.substr(7);
    auto q = rest.find('?');
    u.unix_path = std::string(rest.substr(0, q));
    if (q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      if (query.rfind("db=", 0) == 0) {
        auto v = query.substr(3);
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), u.db);
        if (ec != std::errc() || p != v.data() + v.size()) {
          return bad("db must be a number");
        }
      }
    }
    if (u.unix_path.empty()) {
      return bad("no socket path");
    }
    return u;
  }
  if (url.rfind("redis://", 0) != 0) {
    return bad("must start with redis:// or unix://");
  }
  std::string_view rest = url.substr(8);
  auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    auto cred = rest.substr(0, at);
    auto colon = cred.find(':');
    u.password = std::string(colon == std::string_view::npos ? cred : cred.substr(colon + 1));
    rest = rest.substr(at + 1);
  }
  auto slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < rest.size()) {
    auto v = rest.substr(slash + 1);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), u.db);
    if (ec != std::errc() || p != v.data() + v.size() || u.db < 0) {
      return bad("the database must be a number");
    }
  }
  std::string_view host = hostport;
  if (!hostport.empty() && hostport.front() == '[') { // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      return bad("unclosed '['");
    }
    host = hostport.substr(1, close - 1);
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport.front() == ':') {
      hostport.remove_prefix(1);
      auto [p, ec] = std::from_chars(hostport.data(), hostport.data() + hostport.size(), u.port);
      if (ec != std::errc() || p != hostport.data() + hostport.size() || u.port == 0) {
        return bad("the port must be a number");
      }
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    auto v = hostport.substr(colon + 1);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), u.port);
    if (ec != std::errc() || p != v.data() + v.size() || u.port == 0) {
      return bad("the port must be a number");
    }
  }
  if (!host.empty()) {
    u.host = std::string(host);
  }
  return u;
}

Result<Redis> Redis::connect(const RedisUrl& url, std::chrono::milliseconds timeout) {
  timeval tv = to_timeval(timeout);
  redisContext* ctx = url.unix_path.empty()
                          ? redisConnectWithTimeout(url.host.c_str(), url.port, tv)
                          : redisConnectUnixWithTimeout(url.unix_path.c_str(), tv);
  if (ctx == nullptr) {
    return make_error("cannot connect to Redis at " + url.describe() + ": out of memory");
  }
  if (ctx->err != 0) {
    std::string why = ctx->errstr;
    redisFree(ctx);
    return make_error("cannot connect to Redis at " + url.describe() + ": " + why);
  }
  redisSetTimeout(ctx, tv);
  Redis r(ctx);
  if (!url.password.empty()) {
    auto a = r.command({"AUTH", url.password});
    if (!a) {
      return make_error("Redis at " + url.describe() + ": " + a.error().message);
    }
  }
  if (url.db != 0) {
    auto s = r.command({"SELECT", std::to_string(url.db)});
    if (!s) {
      return make_error("Redis at " + url.describe() + ": " + s.error().message);
    }
  }
  return r;
}

Redis::Redis(Redis&& o) noexcept : m_ctx(std::exchange(o.m_ctx, nullptr)), m_broken(o.m_broken) {}

Redis& Redis::operator=(Redis&& o) noexcept {
  if (this != &o) {
    if (m_ctx != nullptr) {
      redisFree(m_ctx);
    }
    m_ctx = std::exchange(o.m_ctx, nullptr);
    m_broken = o.m_broken;
  }
  return *this;
}

Redis::~Redis() {
  if (m_ctx != nullptr) {
    redisFree(m_ctx);
  }
}

void Redis::set_timeout(std::chrono::milliseconds timeout) {
  if (m_ctx != nullptr) {
    redisSetTimeout(m_ctx, to_timeval(timeout));
  }
}

Error Redis::io_error(std::string_view what) {
  std::string why = m_ctx != nullptr && m_ctx->err != 0 ? m_ctx->errstr : "connection lost";
  if (m_ctx != nullptr && m_ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    why = "timed out";
  }
  m_broken = true; // hiredis cannot resume a context after an I/O error
  return make_error("Redis " + std::string(what) + ": " + why);
}

Result<void> Redis::send(const std::vector<std::string>& args) {
  if (m_ctx == nullptr || m_broken) {
    return make_error("Redis connection is broken");
  }
  Argv argv(args);
  if (redisAppendCommandArgv(m_ctx, argv.count(), argv.ptrs.data(), argv.lens.data()) != REDIS_OK) {
    return io_error(first_word(args));
  }
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(m_ctx, &done) != REDIS_OK) {
      return io_error(first_word(args));
    }
  }
  return {};
}

Result<std::optional<Reply>> Redis::poll_reply(std::chrono::milliseconds wait) {
  if (m_ctx == nullptr || m_broken) {
    return make_error("Redis connection is broken");
  }
  void* raw = nullptr;
  // A reply already buffered comes first; else wait for the socket, never in hiredis (a
  // timeout there would ruin the context).
  for (int round = 0; round < 2; ++round) {
    if (redisGetReplyFromReader(m_ctx, &raw) != REDIS_OK) {
      return io_error("read");
    }
    if (raw != nullptr) {
      ReplyPtr reply(raw);
      return std::optional<Reply>(convert(static_cast<redisReply*>(raw)));
    }
    if (round == 1) {
      break;
    }
    pollfd pfd{m_ctx->fd, POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR) {
      return io_error("poll");
    }
    if (n <= 0) {
      return std::optional<Reply>{};
    }
    if (redisBufferRead(m_ctx) != REDIS_OK) {
      return io_error("read");
    }
  }
  return std::optional<Reply>{};
}

Result<Reply> Redis::command(const std::vector<std::string>& args) {
  if (m_ctx == nullptr || m_broken) {
    return make_error("Redis connection is broken");
  }
  Argv argv(args);
  void* raw = redisCommandArgv(m_ctx, argv.count(), argv.ptrs.data(), argv.lens.data());
  if (raw == nullptr) {
    return io_error(first_word(args));
  }
  ReplyPtr reply(raw);
  Reply r = convert(static_cast<redisReply*>(raw));
  if (r.type == Reply::Type::error) {
    return make_error("Redis " + std::string(first_word(args)) + ": " + r.str);
  }
  return r;
}

Result<std::vector<Reply>> Redis::transaction(const std::vector<std::vector<std::string>>& cmds) {
  if (m_ctx == nullptr || m_broken) {
    return make_error("Redis connection is broken");
  }
  auto append = [&](const std::vector<std::string>& args) {
    Argv argv(args);
    return redisAppendCommandArgv(m_ctx, argv.count(), argv.ptrs.data(), argv.lens.data()) ==
           REDIS_OK;
  };
  bool ok = append({"MULTI"});
  for (const auto& c : cmds) {
    ok = ok && append(c);
  }
  ok = ok && append({"EXEC"});
  if (!ok) {
    return io_error("MULTI");
  }
  std::vector<Reply> queued;
  for (std::size_t i = 0; i < cmds.size() + 2; ++i) {
    void* raw = nullptr;
    if (redisGetReply(m_ctx, &raw) != REDIS_OK) {
      return io_error("EXEC");
    }
    ReplyPtr reply(raw);
    queued.push_back(convert(static_cast<redisReply*>(raw)));
  }
  for (std::size_t i = 0; i + 1 < queued.size(); ++i) {
    if (queued[i].type == Reply::Type::error) {
      return make_error("Redis " + std::string(i == 0 ? "MULTI" : first_word(cmds[i - 1])) + ": " +
                        queued[i].str);
    }
  }
  Reply& exec = queued.back();
  if (exec.type != Reply::Type::array) {
    return make_error("Redis EXEC: the transaction was aborted" +
                      (exec.type == Reply::Type::error ? ": " + exec.str : std::string()));
  }
  return std::move(exec.elements);
}

} // namespace pss::celery

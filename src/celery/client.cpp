#include "celery/client.hpp"

#include "util/log.hpp"
#include "util/uuid.hpp"

#include <map>
#include <thread>

namespace pss::celery {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto k_io_timeout = 5s;
constexpr std::size_t k_subscribe_batch = 256;

// Connects, retrying with back-off until `deadline`.
Result<Redis> connect_until(const RedisUrl& url, Clock::time_point deadline) {
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    auto c = Redis::connect(url, k_io_timeout);
    if (c || Clock::now() + backoff >= deadline) {
      return c;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
  }
}

} // namespace

Result<void> call_tasks(const ClientOptions& opts, const std::vector<TaskCall>& calls,
                        const std::function<void(std::size_t, const std::string&)>& on_sent,
                        const std::function<void(std::size_t, Result<ResultMeta>)>& on_result) {
  auto log = log::get("celery");
  auto start = Clock::now();
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    ids.push_back(uuid4());
  }
  std::map<std::string, std::size_t> pending; // channel → index
  for (std::size_t i = 0; i < calls.size(); ++i) {
    pending[result_key(ids[i])] = i;
  }

  // Subscribe before publishing, as Python's result backend does: no result can slip by.
  std::optional<Redis> sub;
  auto subscribe_all = [&]() -> Result<void> {
    auto c = connect_until(opts.result_backend, start + opts.wait_timeout);
    if (!c) {
      return c.error();
    }
    sub = std::move(*c);
    std::vector<std::string> cmd{"SUBSCRIBE"};
    std::size_t expected = 0;
    for (const auto& [channel, i] : pending) {
      cmd.push_back(channel);
      if (cmd.size() > k_subscribe_batch) {
        PSS_TRY_VOID(sub->send(cmd));
        expected += cmd.size() - 1;
        cmd.resize(1);
      }
    }
    if (cmd.size() > 1) {
      PSS_TRY_VOID(sub->send(cmd));
      expected += cmd.size() - 1;
    }
    for (std::size_t got = 0; got < expected;) { // one confirmation per channel
      auto r = sub->poll_reply(k_io_timeout);
      if (!r) {
        return r.error();
      }
      if (!*r) {
        return make_error("Redis SUBSCRIBE: no confirmation within 5 s");
      }
      ++got;
    }
    return {};
  };
  // Results stored before we (re)subscribed.
  auto read_stored = [&]() -> Result<void> {
    auto c = connect_until(opts.result_backend, start + opts.wait_timeout);
    if (!c) {
      return c.error();
    }
    std::vector<std::string> done;
    for (const auto& [channel, i] : pending) {
      auto v = c->command({"GET", channel});
      if (!v) {
        return v.error();
      }
      if (!v->is_nil()) {
        auto meta = parse_result_meta(v->str);
        if (meta && meta->ready()) {
          on_result(i, std::move(*meta));
          done.push_back(channel);
        }
      }
    }
    for (const auto& d : done) {
      pending.erase(d);
    }
    return {};
  };

  if (opts.wait) {
    if (auto r = subscribe_all(); !r) {
      return make_error("cannot wait for results: " + r.error().message);
    }
  }
  {
    auto pub = make_publisher(opts.broker);
    SendOptions so;
    so.queue = opts.queue;
    so.ignore_result = false;
    for (std::size_t i = 0; i < calls.size(); ++i) {
      so.expires = calls[i].expires;
      auto backoff = std::chrono::milliseconds(100);
      for (;;) {
        auto r = pub->publish(ids[i], opts.task_name, calls[i].args, calls[i].kwargs, so);
        if (r) {
          break;
        }
        if (Clock::now() + backoff >= start + opts.wait_timeout) {
          return make_error("cannot publish task " + ids[i] + ": " + r.error().message);
        }
        log->warn("broker: {}; reconnecting", r.error().message);
        std::this_thread::sleep_for(backoff);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
      }
      on_sent(i, ids[i]);
    }
  }
  if (!opts.wait) {
    return {};
  }
  if (auto r = read_stored(); !r) {
    log->warn("result backend: {}", r.error().message);
  }
  while (!pending.empty()) {
    if (opts.cancel != nullptr && opts.cancel->load()) {
      for (const auto& [channel, i] : pending) {
        on_result(i, make_error("cancelled before its result came"));
      }
      break;
    }
    if (Clock::now() - start >= opts.wait_timeout) {
      for (const auto& [channel, i] : pending) {
        on_result(
            i,
            make_error(
                "no result within " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::seconds>(opts.wait_timeout).count()) +
                " s (is a worker consuming queue '" + opts.queue + "'?)"));
      }
      break;
    }
    auto msg =
        sub ? sub->poll_reply(500ms) : Result<std::optional<Reply>>(make_error("no connection"));
    if (!msg) {
      log->warn("result backend: {}; re-subscribing", msg.error().message);
      std::this_thread::sleep_for(200ms);
      if (subscribe_all() && read_stored()) {
        log->info("result backend: subscribed again");
      }
      continue;
    }
    if (!*msg) {
      continue;
    }
    const Reply& m = **msg;
    if (m.type != Reply::Type::array || m.elements.size() != 3 || m.elements[0].str != "message") {
      continue;
    }
    auto it = pending.find(m.elements[1].str);
    if (it == pending.end()) {
      continue;
    }
    auto meta = parse_result_meta(m.elements[2].str);
    if (!meta) {
      log->warn("task {}: unreadable result: {}", ids[it->second], meta.error().message);
      continue;
    }
    if (meta->ready()) {
      on_result(it->second, std::move(*meta));
      pending.erase(it);
    }
  }
  return {};
}

} // namespace pss::celery

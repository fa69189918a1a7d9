#include "backend/callbacks.hpp"

#include "env/engine_env.hpp"
#include "env/expand.hpp"
#include "process/child.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

extern char** environ;

namespace pss::backend {

namespace {

namespace asio = boost::asio;

std::string event_json(std::string_view event, const std::string& engine, const JobResult& r,
                       const model::Analysis& a) {
  nlohmann::ordered_json j;
  j["event"] = event;
  j["engine"] = engine;
  j["input"] = r.input;
  j["bounty"] = model::to_json(r.bounty);
  j["analysis"] = model::to_json(a);
  if (a.error) {
    j["error"] = *a.error;
  }
  return j.dump() + "\n";
}

constexpr std::chrono::seconds k_term_grace{2}; // after its timeout: SIGTERM, then SIGKILL

std::map<std::string, std::string> callback_environment(const Callbacks::Event& e) {
  std::map<std::string, std::string> env;
  for (char** p = environ; *p != nullptr; ++p) {
    std::string_view kv(*p);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) {
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  for (const auto& [k, v] : e.env) {
    env[k] = v;
  }
  return env;
}

using Pipe = std::shared_ptr<asio::posix::stream_descriptor>;

// Its stdout is read and dropped: a callback that prints never blocks on a full pipe, and
// nothing it prints mixes with our output. (Its stderr goes to the log, as any child's.)
asio::awaitable<void> discard(Pipe out) {
  std::array<char, 4096> buf{};
  for (;;) {
    auto [ec, n] =
        co_await out->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      co_return;
    }
  }
}

// A callback that does not read its stdin gets EPIPE: ignored (SIGPIPE is ignored).
asio::awaitable<void> feed(Pipe in, std::string data) {
  co_await asio::async_write(*in, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
  boost::system::error_code ignored;
  in->close(ignored);
}

asio::awaitable<std::string> run_child(const Callbacks::Event& e) {
  auto ex = co_await asio::this_coro::executor;
  process::SpawnSpec spec;
  spec.argv = e.argv;
  spec.env = callback_environment(e);
  spec.name = "callback";
  spec.stdio_pipes = true;
  auto child = process::Child::spawn(ex, std::move(spec));
  if (!child) {
    co_return "cannot start " + quote(e.argv[0]) + ": " + child.error().message;
  }
  auto in = std::make_shared<asio::posix::stream_descriptor>(ex, (*child)->take_stdin().release());
  auto out =
      std::make_shared<asio::posix::stream_descriptor>(ex, (*child)->take_stdout_pipe().release());
  asio::co_spawn(ex, feed(in, e.stdin_json), asio::detached);
  asio::co_spawn(ex, discard(out), asio::detached);
  auto status = co_await (*child)->wait_for(e.timeout);
  std::string error;
  if (!status) {
    co_await (*child)->stop(k_term_grace);
    error = "timed out after " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(e.timeout).count()) +
            " s (stopped)";
  } else if (!status->success()) {
    error = status->describe();
  }
  // A grandchild may still hold the pipes: they are closed, not waited for.
  boost::system::error_code ignored;
  in->close(ignored);
  out->close(ignored);
  co_return error;
}

// Runs one callback: argv, the JSON on its stdin, stopped after its timeout. Returns what
// went wrong, or "" when it exited 0. On the callbacks' own thread, with a loop of its own.
std::string run_one(const Callbacks::Event& e) {
  asio::io_context io;
  std::string error;
  asio::co_spawn(io, run_child(e), [&](std::exception_ptr ep, std::string r) {
    error = std::move(r);
    if (ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& x) {
        error = x.what();
      }
    }
  });
  io.run();
  return error;
}

} // namespace

std::vector<std::string> split_command(const std::string& command) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : command) {
    if (c == ' ' || c == '\t') {
      if (!cur.empty()) {
        out.push_back(std::move(cur));
        cur.clear();
      }
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) {
    out.push_back(std::move(cur));
  }
  return out;
}

Callbacks::~Callbacks() {
  drain();
  {
    std::lock_guard lock(m_mu);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void Callbacks::set_for_all(CallbackSpec spec) {
  m_all = std::move(spec);
}

void Callbacks::set_for_engine(const std::string& engine, CallbackSpec spec,
                               std::filesystem::path dir) {
  if (!spec.empty()) {
    m_engines[engine] = {std::move(spec), std::move(dir)};
  }
}

void Callbacks::fire(const JobResult& r) {
  std::vector<Event> events;
  for (const auto& ea : r.analyses) {
    bool ok = ea.analysis.result != model::Verdict::unknown || !ea.analysis.error;
    std::string_view name = ok ? "success" : "error";
    auto add = [&](const CallbackSpec& spec, const std::filesystem::path* dir) {
      const auto& argv = ok ? spec.on_success : spec.on_error;
      if (argv.empty()) {
        return;
      }
      Event e;
      auto lookup = [dir](std::string_view n) -> std::optional<std::string> {
        if (dir != nullptr && n == "ENGINE_DIR") {
          return dir->native();
        }
        return env::process_getenv(n);
      };
      for (const auto& a : argv) {
        auto x = env::expand(a, lookup);
        e.argv.push_back(x ? *x : a);
      }
      e.stdin_json = event_json(name, ea.engine, r, ea.analysis);
      e.env = {{"PSS_EVENT", std::string(name)},
               {"PSS_ENGINE", ea.engine},
               {"PSS_INPUT", r.input},
               {"PSS_BOUNTY_ID", std::to_string(r.bounty.id)},
               {"PSS_VERDICT", std::string(model::to_string(ea.analysis.result))}};
      if (ea.analysis.error) {
        e.env["PSS_ERROR"] = *ea.analysis.error;
      }
      e.timeout = spec.timeout;
      events.push_back(std::move(e));
    };
    if (auto it = m_engines.find(ea.engine); it != m_engines.end()) {
      add(it->second.first, &it->second.second);
    }
    add(m_all, nullptr);
  }
  if (events.empty()) {
    return;
  }
  std::lock_guard lock(m_mu);
  for (auto& e : events) {
    m_queue.push_back(std::move(e));
  }
  if (!m_thread.joinable()) {
    m_thread = std::thread([this] { run(); });
  }
  m_cv.notify_all();
}

void Callbacks::drain() {
  std::unique_lock lock(m_mu);
  m_cv.wait(lock, [this] { return m_queue.empty() && m_running == 0; });
}

void Callbacks::run() {
  auto log = log::get("callbacks");
  for (;;) {
    Event e;
    {
      std::unique_lock lock(m_mu);
      m_cv.wait(lock, [this] { return m_stop || !m_queue.empty(); });
      if (m_queue.empty()) {
        return;
      }
      e = std::move(m_queue.front());
      m_queue.pop_front();
      ++m_running;
    }
    std::string err = run_one(e);
    if (!err.empty()) {
      log->warn("{} callback {} for {}: {}", e.env["PSS_EVENT"], quote(e.argv[0]),
                e.env["PSS_INPUT"], err);
    }
    {
      std::lock_guard lock(m_mu);
      --m_running;
    }
    m_cv.notify_all();
  }
}

} // namespace pss::backend

#include "backend/process_worker.hpp"

#include "backend/answers.hpp"
#include "util/command_loop.hpp"
#include "util/log.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace pss::backend {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int k_exit_error = 2;
constexpr std::size_t k_max_line = 64 * 1024 * 1024; // one job (a bounty with its metadata)
constexpr std::chrono::seconds k_unwind_limit{30};   // after a signal stopped the engines
// How often the engines' states are looked at between scans (a server restarted, a reload).
constexpr std::chrono::seconds k_states_every{1};

// Our ends of the job channel, taken off fds 0 and 1 so that nothing else can read the jobs
// or write into the results: fd 0 becomes /dev/null, fd 1 a copy of stderr.
struct Channel {
  int in = -1;
  int out = -1;
};

// A pipe or a socket: what Asio can wait on. (A regular file cannot be registered with
// epoll; Asio then fails to re-register it in every child forked to start an engine, and
// that child goes on running our code instead of exec'ing.)
bool is_stream(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

Channel take_channel() {
  Channel c;
  if (!is_stream(STDIN_FILENO) || !is_stream(STDOUT_FILENO)) {
    return c;
  }
  c.in = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  c.out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::close(null);
  }
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
  return c;
}

// Before the event loop runs (the start-up error): a plain blocking write.
void write_line_now(int fd, const std::string& line) {
  std::string s = line + "\n";
  std::size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

// Lines to the parent, in order, without blocking the scans.
class LineWriter {
public:
  LineWriter(asio::any_io_executor ex, int fd)
      : m_pipe(ex, fd), m_idle(ex, Clock::time_point::max()) {}

  void send(std::string line) {
    if (m_broken) {
      return;
    }
    m_queue.push_back(std::move(line) + "\n");
    if (!m_writing) {
      m_writing = true;
      auto task = write_all();
      asio::co_spawn(m_pipe.get_executor(), std::move(task), [this](std::exception_ptr) {
        m_writing = false;
        m_idle.cancel();
      });
    }
  }

  // Waits until every queued line is written (or the pipe broke).
  asio::awaitable<void> drain() {
    while (m_writing) {
      co_await m_idle.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

private:
  asio::awaitable<void> write_all() {
    while (!m_queue.empty()) {
      auto [ec, n] = co_await asio::async_write(m_pipe, asio::buffer(m_queue.front()),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) { // the parent is gone: nobody to answer (its death signal follows)
        log::get("backend-worker")->error("cannot write a result: {}", ec.message());
        m_broken = true;
        m_queue.clear();
        co_return;
      }
      m_queue.pop_front();
    }
  }

  asio::posix::stream_descriptor m_pipe;
  asio::steady_timer m_idle;
  std::deque<std::string> m_queue;
  bool m_writing = false;
  bool m_broken = false;
};

// The engines' states, as the parent's /metrics shows them: sent when they differ from what
// was sent last (job.hpp, the "states" line).
class StateReporter {
public:
  StateReporter(const Backend& backend, LineWriter& out) : m_backend(backend), m_out(out) {}

  void report() {
    auto now = m_backend.states();
    if (now != m_told) {
      m_told = std::move(now);
      m_out.send(to_json_line(to_json(m_told)));
    }
  }

private:
  const Backend& m_backend;
  LineWriter& m_out;
  std::vector<EngineState> m_told;
};

// Reports until `*on` is false; its timer is cancelled then, so it ends at once.
asio::awaitable<void> report_states_every(std::shared_ptr<asio::steady_timer> timer,
                                          std::shared_ptr<bool> on, StateReporter& reporter) {
  while (*on) {
    timer->expires_after(k_states_every);
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    if (*on) {
      reporter.report();
    }
  }
}

WorkerHello hello(const std::vector<EngineInfo>& engines) {
  WorkerHello h;
  h.pid = ::getpid();
  h.engines = engines;
  return h;
}

// What a bug answers: the job still gets its one result.
JobResult internal_error(const Job& job, const std::vector<EngineInfo>& engines,
                         const std::string& what) {
  return unknown_result(job, job_bounty(job), engines_for(job, engines), "internal error: " + what);
}

asio::awaitable<void> scan_one(Backend& backend, Job job, LineWriter& out, StateReporter& states) {
  JobResult r;
  try {
    r = co_await backend.run_one(job);
  } catch (const std::exception& e) {
    log::get("backend-worker")->error("{}: {}", job.input, e.what());
    r = internal_error(job, backend.engines(), e.what());
  }
  out.send(to_json_line(to_json(r)));
  states.report(); // its cache lookup; a server restarted while it scanned
}

} // namespace

int run_process_worker(ProcessWorkerOptions opts) {
  auto log = log::get("backend-worker");
  Channel channel = take_channel();
  if (channel.in < 0 || channel.out < 0) {
    std::fprintf(stderr, "pssupervise: error: __worker is started by `analyze --backend "
                         "process`: its stdin and stdout must be pipes\n");
    return k_exit_error;
  }
  auto fail = [&](const std::string& message) {
    write_line_now(channel.out, to_json_line(to_json(WorkerHello{message, 0, {}})));
    return k_exit_error;
  };
  if (opts.error) {
    return fail(*opts.error);
  }
  auto tmp = TempDir::create(temp_base_dir(), "pssupervise-worker-");
  if (!tmp) {
    return fail(tmp.error().message + " (set TMPDIR to a writable directory)");
  }
  LocalOptions lo = opts.local;
  lo.concurrency = std::max<std::size_t>(1, lo.concurrency);
  lo.fetch.temp_dir = tmp->path();

  CommandLoop loop;
  std::unique_ptr<Backend> backend;
  try {
    backend = std::make_unique<LocalBackend>(
        lo, std::make_unique<engine::EngineSet>(opts.engines, opts.engines_dir, loop.executor()));
    if (opts.cache) {
      if (auto store = open_cache_store(*opts.cache)) {
        backend = std::make_unique<CachedBackend>(std::move(backend), std::move(store), *opts.cache,
                                                  cache_fetch_options(lo));
      }
    }
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  LineWriter out(loop.executor(), channel.out);
  StateReporter states(*backend, out);
  asio::posix::stream_descriptor in(loop.executor(), channel.in);
  int exit_code = 0;
  bool stopping = false; // a signal: no further job; the engines are being stopped

  auto main_task = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    std::optional<std::string> start_error;
    try {
      co_await backend->start();
    } catch (const std::exception& e) {
      start_error = e.what();
    }
    if (start_error || stopping) {
      if (start_error && !stopping) {
        out.send(to_json_line(to_json(WorkerHello{*start_error, 0, {}})));
        exit_code = k_exit_error;
      }
      co_await out.drain();
      if (!stopping) {
        co_await backend->stop(); // what did start
      }
      co_return;
    }
    out.send(to_json_line(to_json(hello(backend->engines()))));
    states.report();
    auto tick = std::make_shared<asio::steady_timer>(ex);
    auto ticking = std::make_shared<bool>(true);
    asio::co_spawn(ex, report_states_every(tick, ticking, states), asio::detached);
    std::size_t running = 0;
    std::deque<Job> queued; // read ahead (the parent prefetches), not started yet
    asio::steady_timer changed(ex, Clock::time_point::max());
    std::function<void(Job)> start = [&](Job job) {
      ++running;
      auto task = scan_one(*backend, std::move(job), out, states);
      asio::co_spawn(ex, std::move(task), [&](std::exception_ptr ep) {
        if (ep) {
          log->error("a scan ended with an exception");
        }
        --running;
        if (!queued.empty() && !stopping) {
          auto next = std::move(queued.front());
          queued.pop_front();
          start(std::move(next));
        }
        changed.cancel();
      });
    };
    asio::streambuf buf(k_max_line);
    while (!stopping) {
      auto [ec, n] =
          co_await asio::async_read_until(in, buf, '\n', asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
          log->error("reading jobs: {}", ec.message());
        }
        break; // EOF: the parent has no more jobs for us
      }
      std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n);
      buf.consume(n);
      line.pop_back(); // '\n'
      auto j = nlohmann::json::parse(line, nullptr, false);
      auto job = j.is_discarded() ? Result<Job>(make_error("not JSON")) : job_from_json(j);
      if (!job) {
        log->error("unreadable job ({}): {}", job.error().message, line.substr(0, 200));
        if (j.is_object() && j.contains("index") && j["index"].is_number_unsigned()) {
          Job bad; // still answered, so that the parent does not wait for it
          bad.index = j["index"].get<std::size_t>();
          if (auto it = j.find("input"); it != j.end() && it->is_string()) {
            bad.input = it->get<std::string>();
          }
          out.send(to_json_line(to_json(
              internal_error(bad, backend->engines(), "unreadable job: " + job.error().message))));
        }
        continue;
      }
      if (job->input == "-" && !job->bounty && !job->error &&
          job->artifact_type == model::ArtifactType::file) {
        job->error = "standard input cannot be read by a worker"; // it is our job pipe
      }
      if (running < lo.concurrency) {
        start(std::move(*job));
      } else {
        queued.push_back(std::move(*job));
      }
    }
    while (running > 0) {
      co_await changed.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    *ticking = false;
    tick->cancel();
    co_await out.drain();
    if (!stopping) {
      co_await backend->stop();
    }
  };

  // SIGHUP (the parent's reload, after it ran the updaters): the engines take the definitions
  // now on disk.
  loop.on_reload([&](bool) -> asio::awaitable<void> {
    if (!stopping) {
      co_await backend->reload(false);
      states.report();
    }
  });
  // SIGTERM (the parent stopping us, or its death signal): stop the engines at once, so that
  // the scans in flight end quickly, and leave. Should they not, we leave anyway.
  loop.on_signal([&](int sig) {
    stopping = true;
    exit_code = 128 + sig;
    log->info("signal {}: stopping engines", sig);
    boost::system::error_code ignored;
    in.cancel(ignored);
    backend->cancel();
    loop.give_up_after(backend->stop(), k_unwind_limit, exit_code,
                       "scans did not end within " + std::to_string(k_unwind_limit.count()) +
                           " s of the signal");
  });
  try {
    loop.run(main_task());
  } catch (const std::exception& e) {
    log->error("{}", e.what());
    return k_exit_error;
  }
  return exit_code;
}

} // namespace pss::backend

#include "cli/backend_worker.hpp"

#include "backend/local.hpp"
#include "cli/engine_set.hpp"
#include "cli/size.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace pss::cli {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int k_exit_error = 2;
constexpr std::size_t k_max_line = 64 * 1024 * 1024;     // one job (a bounty with its metadata)
constexpr std::chrono::seconds k_unwind_limit{30};       // after a signal stopped the engines
constexpr std::string_view k_program = "/proc/self/exe"; // this very binary, even if replaced

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

nlohmann::json ready_line(const EngineSet& engines) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto* e : engines.engines()) {
    list.push_back({{"name", e->manifest().name},
                    {"product", e->manifest().product},
                    {"vendor", e->manifest().vendor}});
  }
  return {{"ready", true}, {"pid", ::getpid()}, {"engines", std::move(list)}};
}

// What a bug answers: the job still gets its one result.
backend::JobResult internal_error(const backend::Job& job,
                                  const std::vector<engine::Engine*>& engines,
                                  const std::string& what) {
  backend::JobResult r;
  r.index = job.index;
  r.input = job.input;
  if (job.bounty) {
    r.bounty = *job.bounty;
  } else {
    r.bounty.artifact_type = job.artifact_type;
    r.bounty.artifact_uri = job.input;
  }
  for (const auto* e : engines) {
    auto a = model::Analysis::unknown_because("internal error: " + what);
    a.product = e->manifest().product;
    a.vendor = e->manifest().vendor;
    model::finalize(a, r.bounty);
    r.analyses.push_back({e->manifest().name, std::move(a)});
  }
  return r;
}

asio::awaitable<void> scan_one(backend::LocalBackend& backend, backend::Job job,
                               std::vector<engine::Engine*> engines, LineWriter& out) {
  backend::JobResult r;
  try {
    r = co_await backend.run_one(job);
  } catch (const std::exception& e) {
    log::get("backend-worker")->error("{}: {}", job.input, e.what());
    r = internal_error(job, engines, e.what());
  }
  out.send(backend::to_json_line(backend::to_json(r)));
}

} // namespace

void setup_backend_worker(CLI::App& app, BackendWorkerOptions& opts) {
  app.add_option("--concurrency", opts.concurrency, "Jobs scanned at once in this process")
      ->capture_default_str();
  app.add_option("--timeout", opts.timeout, "Seconds allowed per scan (default: the engine's)");
  app.add_flag("--deny-private-networks", opts.deny_private_networks,
               "Refuse http(s) artifacts on loopback and private addresses");
  app.add_flag("--restrict-files", opts.restrict_files,
               "Refuse local files but under --allow-file-prefix");
  app.add_option("--allow-file-prefix", opts.allowed_file_prefixes, "A folder files may be in");
  app.add_flag("--no-identify", opts.no_identify, "No libmagic mimetype");
  app.add_option("--max-size", opts.max_size, "Largest artifact fetched (e.g. 512M, 2G)")
      ->capture_default_str();
}

int run_backend_worker(const GlobalOptions& global, const BackendWorkerOptions& opts) {
  auto log = log::get("backend-worker");
  Channel channel = take_channel();
  if (channel.in < 0 || channel.out < 0) {
    std::fprintf(stderr, "pssupervise: error: __worker is started by `analyze --backend "
                         "process`: its stdin and stdout must be pipes\n");
    return k_exit_error;
  }
  auto fail = [&](const std::string& message) {
    write_line_now(channel.out, backend::to_json_line({{"error", message}}));
    return k_exit_error;
  };
  auto max_size = parse_size(opts.max_size);
  if (!max_size) {
    return fail("--max-size: " + max_size.error().message);
  }
  auto tmp = TempDir::create(temp_base_dir(), "pssupervise-worker-");
  if (!tmp) {
    return fail(tmp.error().message + " (set TMPDIR to a writable directory)");
  }
  backend::LocalOptions lo;
  lo.concurrency = std::max<std::size_t>(1, opts.concurrency);
  lo.fetch.temp_dir = tmp->path();
  lo.fetch.max_size = *max_size;
  lo.fetch.allow_private_networks = !opts.deny_private_networks;
  lo.fetch.identify = !opts.no_identify;
  if (opts.restrict_files) {
    lo.fetch.allowed_file_prefixes.emplace(opts.allowed_file_prefixes.begin(),
                                           opts.allowed_file_prefixes.end());
  }
  lo.scan_timeout = std::chrono::seconds(static_cast<long long>(opts.timeout));

  asio::io_context io;
  std::optional<EngineSet> engines;
  try {
    engines.emplace(global, io.get_executor());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  LineWriter out(io.get_executor(), channel.out);
  asio::posix::stream_descriptor in(io, channel.in);
  int exit_code = 0;
  bool stopping = false; // a signal: no further job; the engines are being stopped
  bool main_done = false;

  auto main_task = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    std::optional<std::string> start_error;
    try {
      co_await engines->start_all();
    } catch (const std::exception& e) {
      start_error = e.what();
    }
    if (start_error || stopping) {
      if (start_error && !stopping) {
        out.send(backend::to_json_line({{"error", *start_error}}));
        exit_code = k_exit_error;
      }
      co_await out.drain();
      if (!stopping) {
        co_await engines->stop_all(); // what did start
      }
      co_return;
    }
    out.send(backend::to_json_line(ready_line(*engines)));
    auto list = engines->engines();
    {
      backend::LocalBackend backend(lo, list);
      std::size_t running = 0;
      std::deque<backend::Job> queued; // read ahead (the parent prefetches), not started yet
      asio::steady_timer changed(ex, Clock::time_point::max());
      std::function<void(backend::Job)> start = [&](backend::Job job) {
        ++running;
        auto task = scan_one(backend, std::move(job), list, out);
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
        auto job = j.is_discarded() ? Result<backend::Job>(make_error("not JSON"))
                                    : backend::job_from_json(j);
        if (!job) {
          log->error("unreadable job ({}): {}", job.error().message, line.substr(0, 200));
          if (j.is_object() && j.contains("index") && j["index"].is_number_unsigned()) {
            backend::Job bad; // still answered, so that the parent does not wait for it
            bad.index = j["index"].get<std::size_t>();
            if (auto it = j.find("input"); it != j.end() && it->is_string()) {
              bad.input = it->get<std::string>();
            }
            out.send(backend::to_json_line(backend::to_json(
                internal_error(bad, list, "unreadable job: " + job.error().message))));
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
    }
    co_await out.drain();
    if (!stopping) {
      co_await engines->stop_all();
    }
  };

  // SIGTERM (the parent stopping us, or its death signal): stop the engines at once, so that
  // the scans in flight end quickly, and leave. Should they not, we leave anyway.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer give_up(io);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) {
      return;
    }
    stopping = true;
    exit_code = 128 + sig;
    log->info("signal {}: stopping engines", sig);
    boost::system::error_code ignored;
    in.cancel(ignored);
    asio::co_spawn(io, engines->stop_all(), [&](std::exception_ptr) {
      if (main_done) {
        return;
      }
      give_up.expires_after(k_unwind_limit);
      give_up.async_wait([&](boost::system::error_code ec2) {
        if (!ec2) {
          log->error("scans did not end within {} s of the signal; exiting",
                     k_unwind_limit.count());
          std::_Exit(exit_code);
        }
      });
    });
  });
  std::exception_ptr failure;
  asio::co_spawn(io, main_task(), [&](std::exception_ptr ep) {
    failure = ep;
    main_done = true;
    signals.cancel();
    give_up.cancel();
  });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      log->error("{}", e.what());
    }
    return k_exit_error;
  }
  return exit_code;
}

backend::ProcessOptions process_backend_options(const GlobalOptions& global, std::size_t workers,
                                                const BackendWorkerOptions& worker,
                                                const artifact::FetchOptions& fetch) {
  backend::ProcessOptions po;
  po.workers = std::max<std::size_t>(1, workers);
  std::string engines;
  for (const auto& e : global.engines) {
    engines += (engines.empty() ? "" : ",") + e;
  }
  po.argv = {std::string(k_program), "--engine", engines};
  if (!global.engines_dir.empty()) {
    po.argv.insert(po.argv.end(), {"--engines-dir", global.engines_dir});
  }
  po.argv.insert(po.argv.end(),
                 {"--log-level", global.log_level, "--log-format", global.log_format, "__worker",
                  "--concurrency", std::to_string(std::max<std::size_t>(1, worker.concurrency)),
                  "--max-size", worker.max_size});
  if (worker.timeout > 0) {
    po.argv.insert(po.argv.end(), {"--timeout", fmt::format("{}", worker.timeout)});
  }
  if (worker.deny_private_networks) {
    po.argv.push_back("--deny-private-networks");
  }
  if (worker.restrict_files) {
    po.argv.push_back("--restrict-files");
    for (const auto& p : worker.allowed_file_prefixes) {
      po.argv.insert(po.argv.end(), {"--allow-file-prefix", p});
    }
  }
  if (worker.no_identify) {
    po.argv.push_back("--no-identify");
  }
  po.engines = global.engines;
  po.engines_dir = global.engines_dir;
  po.fetch = fetch;
  return po;
}

} // namespace pss::cli

#include "backend/process.hpp"

#include "backend/answers.hpp"
#include "engine/engine_set.hpp"
#include "process/child.hpp"
#include "util/log.hpp"
#include "util/temp_file.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ; // NOLINT: POSIX

namespace pss::backend {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t k_max_line = 64 * 1024 * 1024; // one result (engines' metadata included)
constexpr std::chrono::seconds k_exit_wait{5};       // from EOF on its stdout to its exit
constexpr std::chrono::seconds k_kill_grace{5};      // SIGTERM, then SIGKILL
constexpr int k_max_idle_deaths = 3;      // deaths in a row holding no job: the slot gives up
constexpr std::size_t k_reason_lines = 5; // of a dead worker's stderr, in the unknown's reason
// The Child's logger for workers: muted, since their stderr lines are passed through as they
// are (Child would echo each one again at debug level).
constexpr std::string_view k_child_log = "process-worker";

// A job the run owes an answer.
struct Entry {
  Job job;                 // as the workers get it
  bool from_stdin = false; // job.input is the temp file holding our stdin; shown as "-"
  int deaths = 0;          // workers that died holding it
  std::string first_death; // why the first one died
  std::string shown_input() const { return from_stdin ? "-" : job.input; }
};

struct Worker {
  std::size_t slot = 0;
  unsigned number = 0; // 1, 2, ... in the order started (names its runtime dirs)
  std::unique_ptr<process::Child> child;
  int pid = 0;
  std::unique_ptr<asio::posix::stream_descriptor> to;   // its stdin
  std::unique_ptr<asio::posix::stream_descriptor> from; // its stdout
  asio::streambuf buf{k_max_line};
  std::map<std::size_t, std::shared_ptr<Entry>> in_flight; // by job index
  bool ready = false;
  bool alone = false;    // holds a retried job: gets nothing else meanwhile
  bool stopping = false; // we asked it to stop: its exit is no death
  bool gone = false;
  bool ready_timed_out = false;
  std::deque<std::string> outbox; // lines not yet written to its stdin
  bool writing = false;
  bool close_after_write = false;
  std::vector<fs::path> dirs; // made for it (runtime dirs), removed once it is gone
  Clock::time_point started = Clock::now();
  std::vector<EngineState> states; // its engines, as its last "states" line said
};

// Adds `from`'s counts (restarts, reloads, cache lookups) to `to`'s; its state is left alone.
void add_counts(EngineState& to, const EngineState& from) {
  to.restarts += from.restarts;
  to.updates_ok += from.updates_ok;
  to.updates_failed += from.updates_failed;
  to.cache_hits += from.cache_hits;
  to.cache_misses += from.cache_misses;
}

// ${NAME}_RUNTIME_DIR of one engine, and the folder the workers' own ones go under.
struct RuntimeVar {
  std::string engine;
  std::string var;
  std::optional<fs::path> base; // nullopt: under a private temp dir of ours
};

void close_quietly(asio::posix::stream_descriptor* d) {
  if (d != nullptr && d->is_open()) {
    boost::system::error_code ignored;
    d->close(ignored);
  }
}

std::string tail_text(const process::Child& child) {
  auto lines = child.output_tail();
  std::string out;
  std::size_t first = lines.size() > k_reason_lines ? lines.size() - k_reason_lines : 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      continue;
    }
    out += out.empty() ? "; its last output: " : " | ";
    out += lines[i];
  }
  return out;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view s(*e);
    auto eq = s.find('=');
    if (eq != std::string_view::npos) {
      env.emplace(std::string(s.substr(0, eq)), std::string(s.substr(eq + 1)));
    }
  }
  return env;
}

} // namespace

struct ProcessBackend::Impl : std::enable_shared_from_this<Impl> {
  struct Slot {
    std::shared_ptr<Worker> worker;
    int idle_deaths = 0;
    bool abandoned = false;
  };

  ProcessOptions opts;
  std::shared_ptr<spdlog::logger> log = log::get("process");
  asio::any_io_executor ex;
  ResultSink sink;
  std::unique_ptr<asio::steady_timer> wake_timer; // cancelled on every change of state
  std::vector<RuntimeVar> runtime_vars;
  std::optional<TempDir> work_dir; // a folder per worker: its temp files, its runtime dirs
  std::optional<artifact::Artifact> stdin_artifact;
  std::deque<std::shared_ptr<Entry>> pending; // never sent
  std::deque<std::shared_ptr<Entry>> retry;   // their worker died: once more, alone
  std::size_t remaining = 0;                  // jobs not answered yet
  std::vector<Slot> slots;
  std::vector<EngineInfo> engines;          // from the manifests
  std::vector<engine::LoadedEngine> loaded; // for their updaters, run here once
  bool starting = true;                     // first start of every slot: a failure fails the run
  std::optional<std::string> start_error;
  std::string last_death;
  // By engine, the counts /metrics would lose otherwise: those of workers gone (their last
  // "states" line), one restart per worker that died (its replacement restarts every engine),
  // and the updaters that failed here.
  std::map<std::string, EngineState> kept;
  bool running = false;
  bool cancelled = false;
  bool stopping = false;
  bool service = false; // serve(): jobs come one by one until stop_service()
  bool service_stop = false;
  std::size_t tasks = 0; // coroutines still running; run() returns when none is left
  unsigned next_number = 0;

  // Service mode (start()): jobs of run_one() by the index we give them.
  struct Waiter {
    explicit Waiter(asio::any_io_executor e) : answered(e, Clock::time_point::max()) {}
    asio::steady_timer answered; // cancelled when `result` is set
    std::optional<JobResult> result;
  };
  std::map<std::size_t, std::shared_ptr<Waiter>> waiters;
  std::size_t next_index = 0;
  bool service_ready = false;
  bool service_done = false;
  std::exception_ptr service_failure;
  std::unique_ptr<asio::steady_timer> service_event; // cancelled on ready and on done

  explicit Impl(ProcessOptions o) : opts(std::move(o)) {
    log::get(k_child_log)->set_level(spdlog::level::off);
    load_engines();
  }

  void wake() {
    if (wake_timer) {
      wake_timer->cancel();
    }
  }

  asio::awaitable<void> wait() {
    co_await wake_timer->async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // Starts a coroutine that counts as a task (run() waits for it) and logs its exception.
  void spawn_task(asio::awaitable<void> task, std::string what) {
    ++tasks;
    asio::co_spawn(ex, std::move(task),
                   [self = shared_from_this(), what = std::move(what)](std::exception_ptr ep) {
                     if (ep) {
                       try {
                         std::rethrow_exception(ep);
                       } catch (const std::exception& e) {
                         self->log->error("{}: {}", what, e.what());
                       }
                     }
                     --self->tasks;
                     self->wake();
                   });
  }

  // Each manifest read once, here: the workers' runtime dirs, and the product and vendor of
  // the `unknown` answers we make up ourselves.
  void load_engines() {
    auto search = engine::engine_search_path(opts.engines_dir);
    for (const auto& name : opts.engines) {
      auto loaded = engine::load_engine(name, search);
      if (!loaded) { // it fails in the workers, which say why
        engines.push_back({name, "", ""});
        continue;
      }
      engines.push_back(engine_info(loaded->manifest));
      RuntimeVar v{name, loaded->env.prefix + "_RUNTIME_DIR", std::nullopt};
      if (auto base = loaded->env.get("RUNTIME_DIR")) {
        v.base = fs::path(*base);
      }
      runtime_vars.push_back(std::move(v));
      this->loaded.push_back(std::move(*loaded));
    }
  }

  // The worker's environment: ours, with its own temp folder (TMPPREFIX: what a worker killed
  // leaves there is removed with it) and its own runtime dir per engine: a subfolder of the
  // engine's (short: unix socket paths are limited to 107 bytes), else one in its folder.
  std::map<std::string, std::string> worker_env(Worker& w) {
    auto env = process_environment();
    fs::path mine = work_dir->path() / std::to_string(w.number);
    if (::mkdir(mine.c_str(), 0700) == 0) {
      w.dirs.push_back(mine);
      env["TMPPREFIX"] = mine.native();
    }
    for (const auto& v : runtime_vars) {
      fs::path dir;
      if (v.base) {
        dir = *v.base / ("w" + std::to_string(::getpid()) + "-" + std::to_string(w.number));
        w.dirs.push_back(dir);
      } else {
        dir = mine / v.engine;
      }
      env[v.var] = dir.native();
    }
    return env;
  }

  void spawn(std::size_t slot) {
    auto w = std::make_shared<Worker>();
    w->slot = slot;
    w->number = ++next_number;
    slots[slot].worker = w;
    process::SpawnSpec spec;
    spec.argv = opts.argv;
    spec.name = std::string(k_child_log);
    spec.stdio_pipes = true;
    spec.env = worker_env(*w);
    // Its log lines (stderr) go to ours as they are: text or JSON, already formatted.
    spec.on_line = [](const std::string& line) {
      std::string out = line + "\n";
      std::fwrite(out.data(), 1, out.size(), stderr);
      std::fflush(stderr);
    };
    auto child = process::Child::spawn(ex, std::move(spec));
    if (!child) {
      w->gone = true;
      start_failed(*w, "cannot start a worker: " + child.error().message);
      return;
    }
    w->child = std::move(*child);
    w->pid = w->child->pid();
    w->to = std::make_unique<asio::posix::stream_descriptor>(ex, w->child->take_stdin().release());
    w->from = std::make_unique<asio::posix::stream_descriptor>(
        ex, w->child->take_stdout_pipe().release());
    log->debug("worker {} (pid {}) starting", w->number, w->pid);
    auto task = life(w);
    spawn_task(std::move(task), "worker " + std::to_string(w->number));
  }

  asio::awaitable<std::optional<std::string>> read_line(Worker& w) {
    auto [ec, n] =
        co_await asio::async_read_until(*w.from, w.buf, '\n', asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
        log->debug("worker {} (pid {}): {}", w.number, w.pid, ec.message());
      }
      co_return std::nullopt; // EOF, a closed pipe, or a line over k_max_line
    }
    std::string line(asio::buffers_begin(w.buf.data()), asio::buffers_begin(w.buf.data()) + n);
    w.buf.consume(n);
    line.pop_back();
    co_return line;
  }

  // One worker, from its start to its exit.
  asio::awaitable<void> life(std::shared_ptr<Worker> w) {
    auto self = shared_from_this();
    std::string failure; // why it never became ready, if it said so
    try {
      asio::steady_timer deadline(ex, opts.ready_timeout);
      deadline.async_wait([w](boost::system::error_code ec) {
        if (!ec && !w->ready && !w->gone) {
          w->ready_timed_out = true;
          w->child->signal_group(SIGKILL);
        }
      });
      auto first = co_await read_line(*w);
      deadline.cancel();
      if (first) {
        auto j = nlohmann::json::parse(*first, nullptr, false);
        auto hello = worker_hello_from_json(j);
        if (hello && hello->error) {
          failure = *hello->error;
        } else if (hello) {
          became_ready(*w);
        } else {
          failure = "worker (pid " + std::to_string(w->pid) +
                    ") said something else than its ready line: " + first->substr(0, 200);
        }
      }
      while (w->ready) {
        auto line = co_await read_line(*w);
        if (!line) {
          break;
        }
        on_result(w, *line);
      }
    } catch (const std::exception& e) {
      log->error("worker {} (pid {}): {}", w->number, w->pid, e.what());
      w->child->signal_group(SIGKILL);
    }
    co_await ended(w, std::move(failure));
  }

  void became_ready(Worker& w) {
    w.ready = true;
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - w.started).count();
    log->info("worker {} (pid {}) ready in {} ms", w.number, w.pid, ms);
    if (w.stopping) {
      stop_worker(w, true); // stopped while starting: close its stdin now
    }
    dispatch();
    wake();
  }

  void on_result(const std::shared_ptr<Worker>& w, const std::string& line) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (is_states_line(j)) {
      if (auto st = states_from_json(j)) {
        w->states = std::move(*st);
      } else { // only /metrics would be wrong: not worth a worker
        log->warn("worker {} (pid {}) sent unreadable engine states: {}", w->number, w->pid,
                  st.error().message);
      }
      return;
    }
    auto r = j.is_discarded() ? Result<JobResult>(make_error("not JSON")) : job_result_from_json(j);
    if (!r) {
      // A broken protocol: stop trusting it; its jobs are retried on a replacement.
      log->error("worker {} (pid {}) sent an unreadable result ({}): killing it", w->number, w->pid,
                 r.error().message);
      w->child->signal_group(SIGKILL);
      return;
    }
    auto it = w->in_flight.find(r->index);
    if (it == w->in_flight.end()) {
      log->warn("worker {} (pid {}) answered job {}, which it does not hold", w->number, w->pid,
                r->index);
      return;
    }
    auto entry = it->second;
    w->in_flight.erase(it);
    w->alone = false;
    slots[w->slot].idle_deaths = 0;
    if (entry->from_stdin) {
      r->input = "-";
      r->bounty.artifact_uri = "-";
    }
    deliver(std::move(*r));
    dispatch();
  }

  // A worker's stdout ended: it exited (or is about to). Settles what it held.
  asio::awaitable<void> ended(std::shared_ptr<Worker> w, std::string failure) {
    w->gone = true;
    keep_states(*w);
    bool was_ready = w->ready;
    w->ready = false;
    close_quietly(w->from.get());
    close_quietly(w->to.get());
    auto status = co_await w->child->wait_for(k_exit_wait);
    if (!status) {
      status = co_await w->child->stop(k_kill_grace);
    }
    for (const auto& d : w->dirs) {
      std::error_code ignored;
      fs::remove_all(d, ignored);
    }
    if (w->stopping || cancelled) {
      log->info("worker {} (pid {}) stopped: {}", w->number, w->pid, status->describe());
      co_return;
    }
    if (!was_ready) {
      if (failure.empty()) {
        failure = "worker (pid " + std::to_string(w->pid) + ") " +
                  (w->ready_timed_out
                       ? "was not ready within " + std::to_string(opts.ready_timeout.count()) + " s"
                       : status->describe() + " before it was ready") +
                  tail_text(*w->child);
      }
      start_failed(*w, failure);
      co_return;
    }
    died(*w, "worker (pid " + std::to_string(w->pid) + ") died" +
                 (w->in_flight.empty() ? ": " : " while scanning: ") + status->describe() +
                 tail_text(*w->child));
  }

  void keep_states(Worker& w) {
    for (const auto& st : w.states) {
      add_counts(kept[st.engine], st);
    }
    w.states.clear();
  }

  void died(Worker& w, const std::string& reason) {
    last_death = reason;
    for (const auto& e : engines) {
      ++kept[e.name].restarts;
    }
    auto& slot = slots[w.slot];
    slot.worker.reset();
    bool held = !w.in_flight.empty();
    std::size_t retried = 0;
    std::size_t given_up = 0;
    for (auto& [index, e] : w.in_flight) {
      if (e->deaths == 0) {
        e->deaths = 1;
        e->first_death = reason;
        retry.push_back(e);
        ++retried;
      } else {
        answer_unknown(*e, reason + "; it was the retry, after " + e->first_death);
        ++given_up;
      }
    }
    w.in_flight.clear();
    if (!held) {
      log->warn("{}", reason);
    } else if (given_up == 0) {
      log->warn("{}; {} job(s) it held will be retried on another worker", reason, retried);
    } else {
      log->warn("{}; {} job(s) it held will be retried, {} answered unknown (a worker had died "
                "on it before)",
                reason, retried, given_up);
    }
    slot.idle_deaths = held ? 0 : slot.idle_deaths + 1;
    if (slot.idle_deaths >= k_max_idle_deaths) {
      log->error("worker slot {}: {} workers in a row died holding no job; not replacing it",
                 w.slot, slot.idle_deaths);
      slot.abandoned = true;
    } else if (!stopping && (!pending.empty() || !retry.empty())) {
      spawn(w.slot); // a replacement, which starts its own engines
    }
    settle_if_no_worker();
    dispatch();
    wake();
  }

  void start_failed(Worker& w, const std::string& reason) {
    auto& slot = slots[w.slot];
    if (slot.worker.get() == &w) {
      slot.worker.reset();
    }
    if (w.stopping || cancelled) {
      return;
    }
    if (starting) {
      if (!start_error) {
        start_error = reason;
      }
      wake();
      return;
    }
    log->error("cannot replace a worker: {}", reason);
    slot.abandoned = true;
    last_death =
        last_death.empty() ? reason : last_death + "; and no worker could replace it: " + reason;
    settle_if_no_worker();
    dispatch();
    wake();
  }

  // No worker left, none coming: what is still owed is answered `unknown`.
  void settle_if_no_worker() {
    for (const auto& s : slots) {
      if (s.worker && !s.worker->gone) {
        return;
      }
    }
    while (!retry.empty()) {
      auto e = retry.front();
      retry.pop_front();
      answer_unknown(*e, e->first_death + " (no worker left to retry it: " + last_death + ")");
    }
    while (!pending.empty()) {
      auto e = pending.front();
      pending.pop_front();
      answer_unknown(*e, "no worker left to scan it: " + last_death);
    }
  }

  void deliver(JobResult r) {
    --remaining;
    try {
      sink(std::move(r));
    } catch (const std::exception& e) {
      log->error("while handing a result over: {}", e.what());
    }
    if (remaining == 0) {
      wake();
    }
  }

  void answer_unknown(const Entry& e, const std::string& reason) {
    Job shown = e.job;
    shown.input = e.shown_input();
    deliver(unknown_result(shown, job_bounty(shown), engines_for(shown, engines), reason));
  }

  // Hands jobs to ready workers: up to `in_flight` each; a retried job alone.
  void dispatch() {
    if (starting || cancelled || stopping) {
      return;
    }
    const std::size_t limit = std::max<std::size_t>(1, opts.in_flight);
    for (auto& slot : slots) {
      auto w = slot.worker;
      if (!w || !w->ready || w->gone || w->stopping) {
        continue;
      }
      while (!w->alone) {
        if (!retry.empty()) {
          // Alone, so that a job that kills its worker is the only one blamed for it.
          if (w->in_flight.empty()) {
            auto e = retry.front();
            retry.pop_front();
            w->alone = true;
            send(w, e);
          }
          break;
        }
        if (pending.empty() || w->in_flight.size() >= limit) {
          break;
        }
        auto e = pending.front();
        pending.pop_front();
        send(w, e);
      }
    }
  }

  void send(const std::shared_ptr<Worker>& w, const std::shared_ptr<Entry>& e) {
    w->in_flight[e->job.index] = e;
    w->outbox.push_back(to_json_line(to_json(e->job)) + "\n");
    if (!w->writing) {
      w->writing = true;
      auto task = write_all(w);
      spawn_task(std::move(task), "writing to worker " + std::to_string(w->number));
    }
  }

  asio::awaitable<void> write_all(std::shared_ptr<Worker> w) {
    auto self = shared_from_this();
    while (!w->outbox.empty() && !w->gone && w->to->is_open()) {
      auto [ec, n] = co_await asio::async_write(*w->to, asio::buffer(w->outbox.front()),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) {
        break; // it died: its reader notices
      }
      w->outbox.pop_front();
    }
    w->writing = false;
    if (w->close_after_write) {
      close_quietly(w->to.get());
    }
  }

  // Graceful: EOF on its stdin (it stops its engines and exits). Otherwise SIGTERM, which
  // it handles the same way. Either way SIGKILL after stop_timeout.
  void stop_worker(Worker& w, bool graceful) {
    if (w.gone) {
      return;
    }
    bool first = !w.stopping;
    w.stopping = true;
    if (graceful && w.ready) {
      if (w.writing) {
        w.close_after_write = true;
      } else {
        close_quietly(w.to.get());
      }
    } else if (!graceful || first) {
      // Not ready yet: it reads no stdin before, so a signal it is.
      w.child->signal_group(SIGTERM);
      w.child->signal_group(SIGCONT);
    }
    if (first) {
      auto task = stop_deadline(w.child.get(), w.number);
      spawn_task(std::move(task), "stopping worker " + std::to_string(w.number));
    }
  }

  asio::awaitable<void> stop_deadline(process::Child* child, unsigned number) {
    auto self = shared_from_this();
    // `child` outlives this: ended() waits for the same exit before the Worker can go.
    if (!co_await child->wait_for(opts.stop_timeout)) {
      log->warn("worker {} (pid {}) did not stop within {} s: SIGKILL", number, child->pid(),
                opts.stop_timeout.count());
      child->signal_group(SIGKILL);
    }
  }

  void stop_all(bool graceful) {
    for (auto& slot : slots) {
      if (slot.worker) {
        stop_worker(*slot.worker, graceful);
      }
    }
  }

  bool all_ready() const {
    for (const auto& s : slots) {
      if (!s.worker || !s.worker->ready) {
        return false;
      }
    }
    return true;
  }

  void take_stdin(Entry& e) {
    auto art = artifact::fetch("-", opts.fetch);
    if (!art) {
      e.job.error = art.error().message; // answered unknown, as the local backend does
      return;
    }
    e.job.input = art->path.native();
    e.from_stdin = true;
    stdin_artifact.emplace(std::move(*art));
  }

  asio::awaitable<void> run(std::vector<Job> jobs, ResultSink s, bool service_mode = false) {
    auto self = shared_from_this();
    service = service_mode;
    ex = co_await asio::this_coro::executor;
    wake_timer = std::make_unique<asio::steady_timer>(ex, Clock::time_point::max());
    sink = std::move(s);
    running = true;
    for (auto& job : jobs) {
      auto e = std::make_shared<Entry>();
      e->job = std::move(job);
      if (e->job.input == "-" && !e->job.bounty && !e->job.error &&
          e->job.artifact_type == model::ArtifactType::file && !cancelled) {
        take_stdin(*e);
      }
      pending.push_back(std::move(e));
    }
    remaining = pending.size();
    auto dir = TempDir::create(temp_base_dir(), "pssupervise-workers-");
    if (!dir) {
      throw Fatal(dir.error().message + " (set TMPDIR to a writable directory)");
    }
    work_dir.emplace(std::move(*dir));
    std::size_t n = service ? std::max<std::size_t>(1, opts.workers)
                            : std::max<std::size_t>(1, std::min(opts.workers, pending.size()));
    slots.resize(n);
    std::exception_ptr failure;
    try {
      for (std::size_t i = 0; i < n && !cancelled; ++i) {
        spawn(i);
      }
      while (!cancelled && !start_error && !all_ready()) {
        co_await wait();
      }
      if (!cancelled && !start_error) {
        starting = false;
        log->info("{} worker(s) ready", n);
        service_ready = true;
        if (service_event) {
          service_event->cancel();
        }
        dispatch();
        while (!cancelled && (service ? !(service_stop && remaining == 0) : remaining > 0)) {
          co_await wait();
        }
      }
    } catch (...) {
      failure = std::current_exception();
    }
    // Every job answered (or an interrupt, or a failed start): the workers go.
    stopping = true;
    stop_all(!cancelled && !start_error && !failure);
    while (tasks > 0) {
      co_await wait();
    }
    running = false;
    if (failure) {
      std::rethrow_exception(failure);
    }
    if (start_error && !cancelled) {
      throw Fatal(*start_error);
    }
  }

  void submit(Job job) {
    auto e = std::make_shared<Entry>();
    e->job = std::move(job);
    pending.push_back(std::move(e));
    ++remaining;
    dispatch(); // a no-op until the workers are ready; then they take it
  }

  void stop_service() {
    service_stop = true;
    wake();
  }

  asio::awaitable<void> start_service() {
    auto self = shared_from_this();
    auto io = co_await asio::this_coro::executor;
    service_event = std::make_unique<asio::steady_timer>(io, Clock::time_point::max());
    auto routed = [this](JobResult r) {
      if (auto it = waiters.find(r.index); it != waiters.end()) {
        it->second->result = std::move(r);
        it->second->answered.cancel();
      }
    };
    asio::co_spawn(io, run({}, routed, true), [self](std::exception_ptr ep) {
      self->service_failure = ep;
      self->service_done = true;
      self->service_event->cancel();
      for (auto& [index, w] : self->waiters) { // no worker will answer them now
        w->answered.cancel();
      }
    });
    while (!service_ready && !service_done) {
      co_await service_event->async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (service_failure) {
      std::rethrow_exception(service_failure);
    }
    if (service_done) {
      throw Fatal("the worker processes stopped before they were ready");
    }
  }

  asio::awaitable<JobResult> run_one(Job job) {
    auto self = shared_from_this();
    std::size_t callers_index = job.index;
    Job copy_for_answer = job; // what an unknown answer needs, should no worker answer
    if (!service_ready || service_done || service_stop) {
      copy_for_answer.index = callers_index;
      co_return unknown_result(copy_for_answer, job_bounty(copy_for_answer),
                               engines_for(copy_for_answer, engines),
                               "the worker processes are not running");
    }
    std::size_t index = next_index++;
    job.index = index;
    auto w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
    waiters[index] = w;
    submit(std::move(job));
    while (!w->result && !service_done) {
      co_await w->answered.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    waiters.erase(index);
    JobResult r = w->result ? std::move(*w->result)
                            : unknown_result(copy_for_answer, job_bounty(copy_for_answer),
                                             engines_for(copy_for_answer, engines),
                                             last_death.empty()
                                                 ? std::string("the worker processes stopped")
                                                 : "the worker processes stopped: " + last_death);
    r.index = callers_index;
    co_return r;
  }

  asio::awaitable<void> stop() {
    auto self = shared_from_this();
    if (!service_event || service_done) {
      co_return;
    }
    stop_service();
    while (!service_done) {
      co_await service_event->async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  void cancel() {
    cancelled = true;
    if (running) {
      stop_all(false);
    }
    wake();
  }
};

ProcessBackend::ProcessBackend(ProcessOptions opts)
    : m_impl(std::make_shared<Impl>(std::move(opts))) {}

ProcessBackend::~ProcessBackend() = default;

namespace {

// The best first: the workers are a pool, and an engine answers while one of them can.
int rank(std::string_view state) {
  if (state == "ready" || state == "ok") {
    return 0;
  }
  if (state == "starting") {
    return 1;
  }
  if (state == "stopping") {
    return 2;
  }
  return state == "down" ? 3 : 4;
}

} // namespace

std::vector<EngineState> ProcessBackend::states() const {
  std::vector<EngineState> out;
  for (const auto& e : m_impl->engines) {
    EngineState total{e.name, "down"};
    if (auto r = m_impl->kept.find(e.name); r != m_impl->kept.end()) {
      add_counts(total, r->second);
    }
    auto consider = [&](std::string_view state) {
      if (rank(state) < rank(total.state)) {
        total.state = std::string(state);
      }
    };
    for (const auto& slot : m_impl->slots) {
      const auto& w = slot.worker;
      if (!w || w->gone) {
        consider(slot.abandoned ? "failed" : "down");
        continue;
      }
      auto st = std::ranges::find(w->states, e.name, &EngineState::engine);
      if (!w->ready || st == w->states.end()) {
        consider("starting");
        continue;
      }
      consider(st->state);
      add_counts(total, *st);
    }
    out.push_back(std::move(total));
  }
  return out;
}

const std::vector<EngineInfo>& ProcessBackend::engines() const {
  return m_impl->engines;
}

boost::asio::awaitable<void> ProcessBackend::start() {
  co_await m_impl->start_service();
}

boost::asio::awaitable<void> ProcessBackend::run(std::vector<Job> jobs, ResultSink sink) {
  co_await m_impl->run(std::move(jobs), std::move(sink));
}

boost::asio::awaitable<JobResult> ProcessBackend::run_one(Job job) {
  co_return co_await m_impl->run_one(std::move(job));
}

void ProcessBackend::cancel() {
  m_impl->cancel();
}

// The updaters run here, once for all workers; then each worker reloads its own engines on
// SIGHUP (a new setup generation, its own clamd's RELOAD, ...) and logs the outcome.
boost::asio::awaitable<std::vector<engine::UpdateOutcome>>
ProcessBackend::reload(bool run_updaters) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<engine::UpdateOutcome> out;
  bool failed = false;
  for (const auto& l : m_impl->loaded) {
    // Only the updaters' outcomes are known here; each worker logs its own reloads.
    if (!run_updaters || !engine::has_updater(l.manifest, l.env)) {
      continue;
    }
    engine::UpdateOutcome o;
    o.engine = l.manifest.name;
    o.stage = "updater";
    // A Windows updater runs under the workers' Wine only: here it would run natively.
    auto r = co_await engine::run_updater(ex, l.manifest, l.env, nullptr);
    o.ok = r.has_value();
    if (!r) {
      failed = true;
      ++m_impl->kept[o.engine].updates_failed;
      o.message = r.error().message;
      m_impl->log->error("{}: update failed; the old definitions go on serving: {}", o.engine,
                         o.message);
    }
    out.push_back(std::move(o));
  }
  if (failed) { // as with one process: no reload of what a failed updater may have half written
    co_return out;
  }
  int told = 0;
  for (auto& slot : m_impl->slots) {
    // Only ready ones: a worker still starting has no SIGHUP handler yet, and will read the
    // definitions now on disk anyway.
    if (slot.worker && slot.worker->ready && !slot.worker->gone && slot.worker->pid > 0) {
      ::kill(slot.worker->pid, SIGHUP);
      ++told;
    }
  }
  m_impl->log->info("asked {} worker(s) to reload their engines", told);
  co_return out;
}

boost::asio::awaitable<void> ProcessBackend::stop() {
  co_await m_impl->stop();
}

} // namespace pss::backend

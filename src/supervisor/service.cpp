#include "supervisor/service.hpp"

#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <regex>

namespace pss::supervisor {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto k_probe_attempt = 2s;      // one readiness probe at most
constexpr auto k_first_poll = 5ms;        // readiness polling starts fast...
constexpr auto k_max_poll = 200ms;        // ...and backs off to this
constexpr auto k_last_lines_grace = 50ms; // lets the output pump read the dying lines

std::string seconds_text(milliseconds ms) {
  auto s = ms.count() / 1000.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

} // namespace

struct Service::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor ex;
  ServiceSpec spec;
  Machine machine;
  std::shared_ptr<spdlog::logger> log;
  std::optional<std::regex> ready_re;
  std::shared_ptr<process::Child> child; // the current (or last) process
  int generation = 0;
  bool line_seen = false;
  std::string last_probe_error; // of the current start, for the error if it never gets ready
  bool closed = false;          // stop() called: nothing new is started
  Clock::time_point spawned_at;
  std::vector<std::weak_ptr<asio::steady_timer>> waiters;
  std::shared_ptr<asio::steady_timer> restart_timer;
  std::shared_ptr<asio::steady_timer> health_timer;

  Impl(asio::any_io_executor e, ServiceSpec s)
      : ex(std::move(e)), spec(std::move(s)), machine(spec.restart), log(log::get(spec.name)) {
    if (!spec.ready_line.empty()) {
      ready_re.emplace(spec.ready_line, std::regex::ECMAScript | std::regex::optimize);
    }
  }

  int pid() const { return child && child->running() ? child->pid() : 0; }

  std::string tail() const {
    if (!child) {
      return "";
    }
    auto t = child->output_tail_text();
    return t.empty() ? "" : "; its last output:" + t;
  }

  // Wakes every coroutine waiting for a change (state, output line).
  void wake() {
    for (auto& w : waiters) {
      if (auto t = w.lock()) {
        t->cancel();
      }
    }
    waiters.clear();
  }

  // Sleeps until something changes or `until`.
  asio::awaitable<void> wait_change(Clock::time_point until) {
    auto t = std::make_shared<asio::steady_timer>(ex, until);
    waiters.push_back(t);
    co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
  }

  void feed(Event e) {
    for (const auto& a : machine.on(e)) {
      act(a);
    }
  }

  void act(const Action& a) {
    auto self = shared_from_this();
    switch (a.kind) {
    case Action::Kind::spawn:
      asio::post(ex, [self] { self->spawn(); });
      break;
    case Action::Kind::kill:
      if (child && child->running()) {
        log->warn("{} (pid {}): {}; killing it", spec.program, child->pid(), a.reason);
        child->signal_group(SIGKILL);
      }
      break;
    case Action::Kind::graceful_stop: {
      auto task = graceful_stop(self, child, machine.ready_since().has_value());
      asio::co_spawn(ex, std::move(task), asio::detached);
      break;
    }
    case Action::Kind::schedule:
      log->warn("{} is down ({}); restarting in {} ms (restart {})", spec.program, a.reason,
                a.delay.count(), machine.restarts() + 1);
      restart_timer = std::make_shared<asio::steady_timer>(ex, a.delay);
      restart_timer->async_wait([self](boost::system::error_code ec) {
        if (!ec && !self->closed) {
          self->feed({Event::Kind::restart_due, Clock::now()});
        }
      });
      break;
    case Action::Kind::notify:
      if (machine.state() == State::failed) {
        log->error("{} failed: {}{}", spec.program, machine.failure(), tail());
      }
      wake();
      break;
    }
  }

  void spawn() {
    if (machine.state() != State::starting || closed) {
      return;
    }
    auto cmd = spec.command ? spec.command() : Result<process::SpawnSpec>(make_error("no command"));
    std::unique_ptr<process::Child> c;
    if (cmd) {
      int gen = generation + 1;
      std::weak_ptr<Impl> weak = shared_from_this();
      cmd->name = spec.program;
      cmd->on_line = [weak, gen](const std::string& line) {
        if (auto self = weak.lock()) {
          self->output_line(gen, line);
        }
      };
      auto spawned = process::Child::spawn(ex, std::move(*cmd));
      if (!spawned) {
        cmd = spawned.error();
      } else {
        c = std::move(*spawned);
      }
    }
    ++generation;
    line_seen = false;
    last_probe_error.clear();
    if (!c) {
      log->error("cannot start {}: {}", spec.program, cmd.error().message);
      feed({Event::Kind::spawn_failed, Clock::now(), cmd.error().message});
      return;
    }
    child = std::move(c);
    spawned_at = Clock::now();
    log->info("started {} (pid {})", spec.program, child->pid());
    if (spec.on_spawn) {
      spec.on_spawn(*child, generation);
    }
    auto self = shared_from_this();
    auto watch = watch_exit(self, child, generation);
    asio::co_spawn(ex, std::move(watch), asio::detached);
    auto probe = probe_ready(self, generation);
    asio::co_spawn(ex, std::move(probe), asio::detached);
  }

  void output_line(int gen, const std::string& line) {
    log->info("{}", line);
    if (gen == generation && ready_re && !line_seen && std::regex_search(line, *ready_re)) {
      line_seen = true;
      wake();
    }
  }

  static asio::awaitable<void> watch_exit(std::shared_ptr<Impl> self,
                                          std::shared_ptr<process::Child> c, int gen) {
    std::optional<process::ExitStatus> st;
    while (!(st = co_await c->wait_for(24h))) {
    }
    // Its helpers die with it: a worker it forked would otherwise live on, holding the port
    // or socket the next run needs, or scanning with a database nobody supervises.
    c->kill_stragglers();
    co_await process::sleep_for(self->ex, k_last_lines_grace);
    bool stopping = self->machine.state() == State::stopping;
    if (stopping) {
      self->log->info("{} (pid {}) stopped: {}", self->spec.program, c->pid(), st->describe());
    } else {
      self->log->warn("{} (pid {}) {}", self->spec.program, c->pid(), st->describe());
    }
    // The dead run's health timer would otherwise keep the loop busy (and our exit waiting)
    // for up to one health interval after the server is gone.
    if (gen == self->generation && self->health_timer) {
      self->health_timer->cancel();
    }
    self->feed({Event::Kind::exited, Clock::now(), st->describe()});
  }

  static asio::awaitable<void> probe_ready(std::shared_ptr<Impl> self, int gen) {
    auto& s = *self;
    auto deadline = s.spawned_at + s.spec.start_timeout;
    Clock::duration delay = k_first_poll;
    std::string last_error;
    auto current = [&] { return gen == s.generation && s.machine.state() == State::starting; };
    while (current()) {
      if (!s.ready_re || s.line_seen) {
        if (!s.spec.ready_probe) {
          break;
        }
        auto attempt = s.spec.ready_probe(std::min(deadline, Clock::now() + k_probe_attempt));
        auto r = co_await std::move(attempt);
        if (!current()) {
          co_return;
        }
        if (r) {
          break;
        }
        last_error = r.error().message;
        s.last_probe_error = last_error;
        s.log->debug("{} not ready yet: {}", s.spec.program, last_error);
      }
      if (Clock::now() >= deadline) {
        std::string why = "not ready within " + seconds_text(s.spec.start_timeout);
        if (!last_error.empty()) {
          why += " (last probe: " + last_error + ")";
        } else if (s.ready_re) {
          why += " (no output line matched " + quote(s.spec.ready_line) + ")";
        }
        s.feed({Event::Kind::start_timeout, Clock::now(), why});
        co_return;
      }
      co_await s.wait_change(std::min(deadline, Clock::now() + delay));
      delay = std::min<Clock::duration>(delay * 2, k_max_poll);
    }
    if (!current()) {
      co_return;
    }
    auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - s.spawned_at).count();
    s.log->info("{} (pid {}) ready in {} ms", s.spec.program, s.pid(), ms);
    s.feed({Event::Kind::ready, Clock::now()});
    if (s.spec.health_probe) {
      auto health = health_loop(self, gen);
      asio::co_spawn(s.ex, std::move(health), asio::detached);
    }
  }

  static asio::awaitable<void> health_loop(std::shared_ptr<Impl> self, int gen) {
    auto& s = *self;
    int failures = 0;
    for (;;) {
      s.health_timer = std::make_shared<asio::steady_timer>(s.ex, s.spec.health_interval);
      auto timer = s.health_timer;
      auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || s.closed || gen != s.generation || s.machine.state() != State::ready) {
        co_return;
      }
      auto check = s.spec.health_probe(Clock::now() + s.spec.health_timeout);
      auto r = co_await std::move(check);
      if (gen != s.generation || s.machine.state() != State::ready) {
        co_return;
      }
      if (r) {
        failures = 0;
        continue;
      }
      ++failures;
      s.log->warn("{} (pid {}) health check failed ({}/{}): {}", s.spec.program, s.pid(), failures,
                  s.spec.health_failures, r.error().message);
      if (failures >= s.spec.health_failures) {
        s.feed({Event::Kind::unhealthy, Clock::now(),
                "health check failed " + std::to_string(failures) +
                    " times (last: " + r.error().message + ")"});
        co_return;
      }
    }
  }

  static asio::awaitable<void> graceful_stop(std::shared_ptr<Impl> self,
                                             std::shared_ptr<process::Child> c, bool was_ready) {
    auto& s = *self;
    if (!c || !c->running()) {
      co_return; // its exit is (being) reported by watch_exit
    }
    if (was_ready && s.spec.shutdown) {
      s.log->info("stopping {} (pid {}): asking it to shut down", s.spec.program, c->pid());
      auto ask = s.spec.shutdown(Clock::now() + s.spec.stop_timeout);
      auto r = co_await std::move(ask);
      if (r) {
        if (co_await c->wait_for(s.spec.stop_timeout)) {
          co_return;
        }
        s.log->warn("{} (pid {}) accepted the shutdown but did not exit within {}", s.spec.program,
                    c->pid(), seconds_text(s.spec.stop_timeout));
      } else {
        s.log->warn("{} (pid {}) refused the shutdown: {}", s.spec.program, c->pid(),
                    r.error().message);
      }
    }
    s.log->info("stopping {} (pid {}): SIGTERM to its process group", s.spec.program, c->pid());
    co_await c->stop(s.spec.stop_timeout);
  }
};

Service::Service(asio::any_io_executor ex, ServiceSpec spec)
    : m_impl(std::make_shared<Impl>(std::move(ex), std::move(spec))) {}

Service::~Service() {
  m_impl->closed = true;
  if (m_impl->child && m_impl->child->running()) {
    m_impl->child->signal_group(SIGKILL);
  }
  if (m_impl->restart_timer) {
    m_impl->restart_timer->cancel();
  }
  if (m_impl->health_timer) {
    m_impl->health_timer->cancel();
  }
  m_impl->wake();
}

const ServiceSpec& Service::spec() const {
  return m_impl->spec;
}

ServiceStatus Service::status() const {
  const auto& s = *m_impl;
  ServiceStatus st;
  st.state = s.machine.state();
  st.pid = s.pid();
  st.ready_since = s.machine.ready_since();
  st.restarts = s.machine.restarts();
  st.generation = s.generation;
  st.last_exit = s.machine.last_exit();
  st.failure = s.machine.failure();
  return st;
}

asio::awaitable<Result<void>> Service::start() {
  auto self = m_impl;
  auto& s = *self;
  s.closed = false;
  auto deadline = Clock::now() + s.spec.start_timeout;
  s.log->info("starting {}", s.spec.program);
  s.feed({Event::Kind::start, Clock::now()});
  for (;;) {
    switch (s.machine.state()) {
    case State::ready:
      co_return Result<void>{};
    case State::failed:
      co_return make_error(s.spec.program + " " + s.machine.failure() + s.tail());
    default:
      break;
    }
    if (s.closed) {
      co_return make_error(s.spec.program + " was stopped while starting");
    }
    if (Clock::now() >= deadline) {
      std::string last = s.machine.last_exit();
      if (!s.last_probe_error.empty()) {
        last = "last probe: " + s.last_probe_error;
      }
      std::string tail = s.tail();
      co_await stop();
      co_return make_error(s.spec.program + " was not ready within " +
                           seconds_text(s.spec.start_timeout) +
                           (last.empty() ? "" : " (" + last + ")") + tail);
    }
    co_await s.wait_change(deadline);
  }
}

asio::awaitable<Result<int>> Service::acquire(Clock::time_point deadline) {
  auto self = m_impl;
  auto& s = *self;
  for (;;) {
    State st = s.machine.state();
    if (st == State::ready && !s.machine.doomed()) {
      co_return s.generation;
    }
    if (st == State::failed) {
      co_return make_error("engine failed: " + s.spec.program + " " + s.machine.failure());
    }
    if (s.closed || st == State::stopping) {
      co_return make_error("engine is stopping");
    }
    if (Clock::now() >= deadline) {
      co_return make_error(s.spec.program + " was not ready before the scan's deadline (" +
                           std::string(to_string(st)) +
                           ", restarting after: " + s.machine.last_exit() + ")");
    }
    co_await s.wait_change(deadline);
  }
}

void Service::report_broken(int generation, const std::string& reason) {
  if (generation == m_impl->generation) {
    m_impl->feed({Event::Kind::unhealthy, Clock::now(), reason});
  }
}

asio::awaitable<void> Service::stop() {
  auto self = m_impl;
  auto& s = *self;
  s.closed = true;
  if (s.restart_timer) {
    s.restart_timer->cancel();
  }
  if (s.health_timer) {
    s.health_timer->cancel();
  }
  s.feed({Event::Kind::stop, Clock::now()});
  // Bounded: the graceful stop ends in SIGKILL after 2 × stop_timeout at most.
  auto deadline = Clock::now() + 2 * s.spec.stop_timeout + 15s;
  while ((s.child && s.child->running()) || s.machine.state() == State::stopping) {
    if (Clock::now() >= deadline) {
      s.log->error("{} (pid {}) did not stop: killing its process group", s.spec.program,
                   s.child ? s.child->pid() : 0);
      if (s.child) {
        s.child->signal_group(SIGKILL);
      }
      break;
    }
    co_await s.wait_change(std::min(deadline, Clock::now() + 100ms));
  }
}

} // namespace pss::supervisor

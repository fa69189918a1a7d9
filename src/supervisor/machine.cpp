#include "supervisor/machine.hpp"

#include <algorithm>

namespace pss::supervisor {

std::string_view to_string(State s) {
  switch (s) {
  case State::down:
    return "down";
  case State::starting:
    return "starting";
  case State::ready:
    return "ready";
  case State::stopping:
    return "stopping";
  case State::failed:
    return "failed";
  }
  return "?";
}

milliseconds Machine::next_delay() const {
  // Doubling from min_delay, capped: 100 ms, 200 ms, 400 ms, ... max_delay.
  milliseconds d = m_policy.min_delay;
  for (int i = 1; i < m_consecutive && d < m_policy.max_delay; ++i) {
    d *= 2;
  }
  return std::min(d, m_policy.max_delay);
}

std::vector<Action> Machine::on(const Event& e) {
  using K = Event::Kind;
  using A = Action::Kind;
  switch (e.kind) {
  case K::start:
    if (m_state == State::failed) { // a new start after giving up: a clean slate
      m_deaths.clear();
      m_consecutive = 0;
      m_failure.clear();
      m_state = State::down;
    }
    if (m_state != State::down || m_restart_pending) {
      m_want_up = true;
      return {};
    }
    m_want_up = true;
    m_state = State::starting;
    return {{A::spawn}, {A::notify}};

  case K::ready:
    if (m_state != State::starting) {
      return {};
    }
    m_state = State::ready;
    m_ready_since = e.now;
    return {{A::notify}};

  case K::exited:
  case K::spawn_failed:
    if (m_state == State::stopping) {
      m_state = State::down;
      m_ready_since.reset();
      m_kill_reason.clear();
      m_last_exit = e.reason;
      return {{A::notify}};
    }
    if (m_state == State::starting || m_state == State::ready) {
      return died(e);
    }
    return {};

  case K::start_timeout:
    if (m_state != State::starting) {
      return {};
    }
    m_kill_reason = e.reason;
    return {{A::kill, milliseconds{0}, e.reason}};

  case K::unhealthy:
    if (m_state != State::starting && m_state != State::ready) {
      return {};
    }
    if (m_kill_reason.empty()) {
      m_kill_reason = e.reason;
    }
    return {{A::kill, milliseconds{0}, e.reason}};

  case K::restart_due:
    if (!m_restart_pending) {
      return {};
    }
    m_restart_pending = false;
    if (m_state != State::down || !m_want_up) {
      return {};
    }
    ++m_restarts;
    m_state = State::starting;
    return {{A::spawn}, {A::notify}};

  case K::stop:
    m_want_up = false;
    m_restart_pending = false;
    if (m_state == State::starting || m_state == State::ready) {
      m_state = State::stopping;
      return {{A::graceful_stop}, {A::notify}};
    }
    if (m_state == State::down) {
      return {{A::notify}};
    }
    return {};
  }
  return {};
}

std::vector<Action> Machine::died(const Event& e) {
  m_last_exit = m_kill_reason.empty() ? e.reason : m_kill_reason + " (then " + e.reason + ")";
  m_kill_reason.clear();
  // A run that stayed ready long enough was healthy: its death restarts at once-ish.
  if (m_ready_since && e.now - *m_ready_since >= m_policy.stable_after) {
    m_consecutive = 0;
  }
  m_ready_since.reset();
  ++m_consecutive;
  m_deaths.push_back(e.now);
  while (!m_deaths.empty() && e.now - m_deaths.front() > m_policy.window) {
    m_deaths.pop_front();
  }
  if (!m_want_up) {
    m_state = State::down;
    return {{Action::Kind::notify}};
  }
  if (static_cast<int>(m_deaths.size()) >= m_policy.max_deaths) {
    m_state = State::failed;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(m_policy.window).count();
    m_failure = "died " + std::to_string(m_deaths.size()) + " times within " +
                std::to_string(secs) + " s; last: " + m_last_exit;
    return {{Action::Kind::notify}};
  }
  m_state = State::down;
  m_restart_pending = true;
  return {{Action::Kind::schedule, next_delay(), m_last_exit}, {Action::Kind::notify}};
}

} // namespace pss::supervisor

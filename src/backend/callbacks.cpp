#include "backend/callbacks.hpp"

#include "env/engine_env.hpp"
#include "env/expand.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pss::backend {

namespace {

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

// Runs one callback: argv, the JSON on its stdin, killed after its timeout. Returns what
// went wrong, or "" when it exited 0.
std::string run_one(const Callbacks::Event& e) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    return "cannot create a pipe";
  }
  UniqueFd rd(in[0]);
  UniqueFd wr(in[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, rd.get(), STDIN_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &def);
  std::vector<std::string> env_strings;
  for (char** p = environ; *p != nullptr; ++p) {
    std::string_view kv(*p);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && e.env.count(std::string(kv.substr(0, eq))) == 0) {
      env_strings.emplace_back(kv);
    }
  }
  for (const auto& [k, v] : e.env) {
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) {
    envp.push_back(s.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> args = e.argv;
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  rd.reset();
  if (rc != 0) {
    return "cannot start " + quote(e.argv[0]) + ": " + std::strerror(rc);
  }
  // Small payloads fit the pipe; a callback that does not read its stdin gets EPIPE, ignored.
  (void)::write(wr.get(), e.stdin_json.data(), e.stdin_json.size());
  wr.reset();
  auto deadline = std::chrono::steady_clock::now() + e.timeout;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "timed out after " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(e.timeout).count()) +
             " s (killed)";
    }
    ::poll(nullptr, 0, 10);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return "";
  }
  return WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                           : "killed by signal " + std::to_string(WTERMSIG(status));
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

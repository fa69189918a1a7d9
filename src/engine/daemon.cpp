#include "engine/daemon.hpp"

#include "env/expand.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"
#include "wine/runtime.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

extern char** environ;

namespace pss::engine {

std::string expand_or_throw(const Manifest& manifest, const env::EngineEnv& env,
                            const std::string& text, const std::string& what,
                            const std::map<std::string, std::string>& placeholders) {
  auto r = env::expand(
      text, [&env](std::string_view n) { return env.lookup(n); }, placeholders);
  if (!r) {
    throw Fatal(manifest.name + ": " + what + ": " + r.error().message);
  }
  return *r;
}

void prepare_daemon_files(const Manifest& manifest, env::EngineEnv& env) {
  std::string warning;
  if (auto r = env::prepare_runtime_dir(env, warning); !r) {
    throw Fatal(r.error().message);
  }
  if (!warning.empty()) {
    log::get(manifest.name)->warn("{}", warning);
  }
  const auto& d = *manifest.daemon;
  for (const auto& dir : d.dirs) {
    auto path = expand_or_throw(manifest, env, dir, "daemon.dirs");
    if (auto r = env::check_private_dir(path, true); !r) {
      throw Fatal(r.error().message);
    }
  }
  for (const auto& [tmpl, target] : d.config) {
    std::ifstream in(manifest.dir / tmpl);
    if (!in) {
      throw Fatal(errno_error("cannot read config template", manifest.dir / tmpl).message);
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string rendered = expand_or_throw(manifest, env, text.str(), tmpl);
    std::string out_path = expand_or_throw(manifest, env, target, "daemon.config");
    UniqueFd fd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd || ::write(fd.get(), rendered.data(), rendered.size()) !=
                   static_cast<ssize_t>(rendered.size())) {
      throw Fatal(errno_error("cannot write config", out_path).message);
    }
  }
}

supervisor::ServiceSpec
daemon_service_spec(const Manifest& manifest, const env::EngineEnv& env, const wine::Runtime* wine,
                    std::function<std::map<std::string, std::string>()> placeholders) {
  const auto& d = *manifest.daemon;
  supervisor::ServiceSpec s;
  s.name = manifest.name;
  s.program = std::filesystem::path(d.argv.front()).filename().string();
  if (s.program.find_first_of("${") != std::string::npos) {
    s.program = manifest.name;
  }
  s.ready_line = d.ready_line;
  s.start_timeout = d.ready_timeout;
  s.health_interval = d.health_interval;
  s.health_timeout = d.health_timeout;
  s.health_failures = d.health_failures;
  s.stop_timeout = d.stop_timeout;
  s.restart = d.restart;
  // The engine owns `manifest` and `env` and outlives its service.
  s.command = [m = &manifest, e = &env, wine, placeholders]() -> Result<process::SpawnSpec> {
    const Manifest& manifest = *m;
    const env::EngineEnv& env = *e;
    try {
      auto ph = placeholders ? placeholders() : std::map<std::string, std::string>{};
      process::SpawnSpec spec;
      for (const auto& a : manifest.daemon->argv) {
        spec.argv.push_back(expand_or_throw(manifest, env, a, "daemon.argv", ph));
      }
      std::map<std::string, std::string> extra;
      for (const auto& [k, v] : manifest.daemon->env) {
        extra[k] = expand_or_throw(manifest, env, v, "daemon.env." + k, ph);
      }
      if (wine) {
        wine->wrap(spec); // Wine's environment
      } else if (!extra.empty()) {
        spec.env.emplace();
        for (char** e = environ; *e != nullptr; ++e) {
          std::string_view kv(*e);
          auto eq = kv.find('=');
          if (eq != std::string_view::npos) {
            (*spec.env)[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
          }
        }
      }
      for (auto& [k, v] : extra) {
        (*spec.env)[k] = v;
      }
      return spec;
    } catch (const Fatal& e) {
      return make_error(e.what());
    }
  };
  return s;
}

Result<std::uint16_t> free_loopback_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return errno_error("cannot create a socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return errno_error("cannot pick a free loopback port");
  }
  return ntohs(addr.sin_port);
}

} // namespace pss::engine

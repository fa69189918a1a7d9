#include "engine/daemon.hpp"

#include "engine/sandbox.hpp"
#include "env/expand.hpp"
#include "process/watchdog.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"
#include "wine/runtime.hpp"

#include <arpa/inet.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

namespace pss::engine {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

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
  prepare_scratch_area(manifest, env, /*warn_if_private=*/true);
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
  // The placeholders of the current start, for the probe too.
  auto current = std::make_shared<std::map<std::string, std::string>>();
  if (!d.ready_connect.empty()) {
    s.ready_probe = [m = &manifest, e = &env,
                     current](Clock::time_point deadline) -> asio::awaitable<Result<void>> {
      std::string where;
      try {
        where = expand_or_throw(*m, *e, m->daemon->ready_connect, "daemon.ready.connect", *current);
      } catch (const Fatal& f) {
        co_return make_error(f.what());
      }
      co_return co_await connect_probe(where, deadline);
    };
  }
  // One scratch directory per start: the next start (after this one's exit) replaces it,
  // and the last one goes with the service.
  auto scratch = std::make_shared<std::optional<env::ScratchDir>>();
  // The engine owns `manifest` and `env` and outlives its service.
  s.command = [m = &manifest, e = &env, wine, placeholders, current,
               scratch]() -> Result<process::SpawnSpec> {
    const Manifest& manifest = *m;
    const env::EngineEnv& env = *e;
    try {
      auto ph = placeholders ? placeholders() : std::map<std::string, std::string>{};
      *current = ph;
      process::SpawnSpec spec;
      for (const auto& a : manifest.daemon->argv) {
        spec.argv.push_back(expand_or_throw(manifest, env, a, "daemon.argv", ph));
      }
      std::map<std::string, std::string> extra;
      for (const auto& [k, v] : manifest.daemon->env) {
        extra[k] = expand_or_throw(manifest, env, v, "daemon.env." + k, ph);
      }
      scratch->reset(); // the previous start's, its process gone
      auto dir = sandbox(spec, manifest, env);
      if (!dir) {
        return dir.error();
      }
      *scratch = std::move(*dir);
      if (wine) {
        wine->wrap(spec); // Wine's variables
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

asio::awaitable<Result<void>> connect_probe(std::string where, Clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  asio::generic::stream_protocol::socket sock(ex);
  process::Watchdog dog(ex, deadline, [&sock] {
    boost::system::error_code ignored;
    sock.close(ignored);
  });
  boost::system::error_code ec;
  if (where.rfind("unix:", 0) == 0) {
    auto [e] = co_await sock.async_connect(asio::local::stream_protocol::endpoint(where.substr(5)),
                                           asio::as_tuple(asio::use_awaitable));
    ec = e;
  } else {
    auto hp = where.substr(4);
    auto colon = hp.rfind(':');
    auto addr = asio::ip::make_address(hp.substr(0, colon), ec);
    unsigned port =
        colon == std::string::npos ? 0 : std::strtoul(hp.c_str() + colon + 1, nullptr, 10);
    if (ec || port == 0 || port > 65535) {
      co_return make_error("bad address " + quote(where) + " (want tcp:IP:PORT)");
    }
    auto [e] =
        co_await sock.async_connect(asio::ip::tcp::endpoint(addr, static_cast<std::uint16_t>(port)),
                                    asio::as_tuple(asio::use_awaitable));
    ec = e;
  }
  if (ec) {
    co_return make_error("nothing accepts on " + where + ": " +
                         (dog.fired() ? std::string("timed out") : ec.message()));
  }
  co_return Result<void>{};
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

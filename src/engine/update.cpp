#include "engine/update.hpp"

#include "util/iso8601.hpp"
#include "util/log.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

namespace pss::engine {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::optional<std::string> env_updater(const env::EngineEnv& env) {
  auto u = env.get("UPDATER");
  if (!u || u->empty()) {
    return std::nullopt;
  }
  return u;
}

std::optional<fs::path> record_path(const env::EngineEnv& env) {
  auto state = env.get("STATE_HOME");
  if (!state || state->empty()) {
    return std::nullopt;
  }
  return fs::path(*state) / "last-update.json";
}

void record(const env::EngineEnv& env, const UpdateOutcome& out) {
  auto path = record_path(env);
  if (!path) {
    return;
  }
  nlohmann::json j{{"engine", out.engine},
                   {"ok", out.ok},
                   {"stage", out.stage},
                   {"message", out.message},
                   {"at", out.at}};
  if (out.before) {
    j["before"] = *out.before;
  }
  if (out.after) {
    j["after"] = *out.after;
  }
  std::error_code ec;
  fs::create_directories(path->parent_path(), ec);
  auto tmp = path->native() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << j.dump() << "\n";
    if (!f) {
      log::get(out.engine)->warn("cannot record the update's outcome in {}", path->native());
      return;
    }
  }
  fs::rename(tmp, *path, ec); // whole or not at all, for a reader in another process
}

} // namespace

bool has_updater(const Manifest& manifest, const env::EngineEnv& env) {
  return env_updater(env) || manifest.update.has_value();
}

bool has_updater(const Engine& engine) {
  return has_updater(engine.manifest(), engine.env());
}

asio::awaitable<Result<void>> run_updater(asio::any_io_executor ex, const Manifest& m,
                                          const env::EngineEnv& env, const wine::Runtime* wine) {
  CommandSpec cmd;
  if (auto u = env_updater(env)) {
    cmd.argv = {*u};
    if (m.update) {
      cmd.timeout = m.update->timeout;
    }
  } else if (m.update) {
    cmd = *m.update;
  } else {
    co_return make_error(m.name + " has no updater (set " + env.prefix +
                         "_UPDATER or give the manifest an \"update\")");
  }
  log::get(m.name)->info("running the updater: {}", cmd.argv.front());
  auto run = co_await run_command_spec(ex, m, env, cmd, "update", {}, wine);
  if (run.status && run.status->success()) {
    co_return Result<void>{};
  }
  std::string why =
      "the updater failed (" + (run.status ? run.status->describe() : run.output) + ")";
  std::vector<std::string> tail = run.errors;
  if (tail.empty() && run.status) {
    // Nothing on stderr: the end of its stdout, where an error follows a long progress log.
    std::istringstream lines(run.output);
    for (std::string l; std::getline(lines, l);) {
      tail.push_back(l);
    }
    constexpr std::size_t k_tail_lines = 10;
    if (tail.size() > k_tail_lines) {
      tail.erase(tail.begin(), tail.end() - k_tail_lines);
    }
  }
  for (const auto& l : tail) {
    why += "\n  " + l;
  }
  co_return make_error(why);
}

asio::awaitable<UpdateOutcome> update_engine(asio::any_io_executor ex, Engine& engine,
                                             bool run_updater) {
  const auto& m = engine.manifest();
  auto logger = log::get(m.name);
  UpdateOutcome out;
  out.engine = m.name;
  out.before = engine.versions().definitions;
  out.at = format_iso8601(std::chrono::system_clock::now());
  out.stage = "updater";
  try {
    if (run_updater) {
      auto r = co_await engine::run_updater(ex, m, engine.env(), engine.wine_runtime());
      if (!r) {
        out.message = r.error().message;
      }
    }
    if (out.message.empty()) {
      out.stage = "reload";
      auto r = co_await engine.reload();
      if (r) {
        out.ok = true;
        out.after = engine.versions().definitions;
      } else {
        out.message = r.error().message;
      }
    }
  } catch (const std::exception& e) { // the engine's bug: still an outcome, the engine serves on
    out.message = std::string("internal error: ") + e.what();
  }
  if (out.ok && out.before == out.after) {
    logger->info("definitions reloaded, unchanged: {}", out.after.value_or("-"));
  } else if (out.ok) {
    logger->info("new definitions in use: {} → {}", out.before.value_or("-"),
                 out.after.value_or("-"));
  } else {
    logger->error("update failed ({}); the old definitions go on serving: {}", out.stage,
                  out.message);
  }
  record(engine.env(), out);
  co_return out;
}

std::optional<std::string> last_update_summary(const env::EngineEnv& env) {
  auto path = record_path(env);
  if (!path) {
    return std::nullopt;
  }
  std::ifstream f(*path);
  if (!f) {
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  std::string at = j.value("at", "");
  if (j.value("ok", false)) {
    return "ok " + at;
  }
  // One line: the reason and its first output lines, cut short.
  std::string msg = j.value("message", "");
  std::string line;
  for (char c : msg) {
    if (c == '\n') {
      line += " |";
    } else {
      line += c;
    }
  }
  constexpr std::size_t k_shown = 240;
  if (line.size() > k_shown) {
    line = line.substr(0, k_shown) + "...";
  }
  return "failed (" + j.value("stage", "") + ") " + at + ": " + line;
}

} // namespace pss::engine

#include "cli/engines.hpp"

#include "engine/engine_set.hpp"
#include "engine/update.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <memory>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

struct Instance {
  std::string state = "-";
  std::string pid = "-";
  std::string uptime = "-";
  std::string restarts = "-";
};

struct Row {
  std::string name;
  std::string driver = "-";
  std::string runtime = "-";
  std::string product = "-";
  std::string state = "ok";
  std::string version = "-";
  std::string definitions = "-";
  std::string pid = "-";
  std::string uptime = "-";
  std::string restarts = "-";
  std::string last_update = "-";
  std::string dir;                 // where its manifest was found
  std::vector<Instance> instances; // a pool's, when it has more than one
  std::unique_ptr<engine::Engine> engine;
};

// Starts the engine to learn whether it works and its versions, then stops it.
asio::awaitable<void> probe(Row& row) {
  std::string failure;
  std::string unset; // engine::NotConfigured
  try {
    co_await row.engine->start();
    auto v = row.engine->versions();
    row.version = v.engine.value_or("-");
    row.definitions = v.definitions.value_or("-");
    // A supervised server: how it runs; a pool: each instance on a line of its own.
    auto all = row.engine->instance_statuses();
    for (std::size_t i = 0; i < all.size(); ++i) {
      const auto& st = all[i];
      Instance inst;
      inst.state = std::string(supervisor::to_string(st.state));
      inst.pid = st.pid > 0 ? std::to_string(st.pid) : "-";
      if (st.ready_since) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - *st.ready_since);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1fs", ms.count() / 1000.0);
        inst.uptime = buf;
      }
      inst.restarts = std::to_string(st.restarts);
      if (i == 0) {
        row.state = inst.state;
        row.pid = inst.pid;
        row.uptime = inst.uptime;
        row.restarts = inst.restarts;
      }
      if (all.size() > 1) {
        row.instances.push_back(std::move(inst));
      }
    }
  } catch (const engine::NotConfigured& e) {
    unset = e.what();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  co_await row.engine->stop();
  if (!failure.empty()) {
    auto nl = failure.find('\n');
    row.state = "failed: " + failure.substr(0, nl);
  } else if (!unset.empty()) {
    row.state = "not configured: " + unset.substr(0, unset.find('\n'));
  }
}

} // namespace

int run_engines(const GlobalOptions& global) {
  auto search = engine::engine_search_path(global.engines_dir);
  auto names = engine::list_engines(search);
  if (names.empty()) {
    std::fprintf(stderr, "pssupervise: error: no engines found (searched %zu folders)\n",
                 search.size());
    return 2;
  }
  asio::io_context io;
  std::vector<Row> rows(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    Row& row = rows[i];
    row.name = names[i];
    auto loaded = engine::load_engine(row.name, search);
    if (!loaded) {
      row.state = "invalid: " + loaded.error().message;
      continue;
    }
    const auto& m = loaded->manifest;
    row.dir = m.dir.native();
    row.driver = m.driver;
    row.runtime = m.runtime;
    row.product = m.product + " (" + m.vendor + ")";
    row.last_update = engine::last_update_summary(loaded->env).value_or("-");
    auto e =
        engine::make_engine(std::move(loaded->manifest), std::move(loaded->env), io.get_executor());
    if (!e) {
      row.state = "invalid: " + e.error().message;
      continue;
    }
    row.engine = std::move(*e);
    asio::co_spawn(io, probe(row), asio::detached); // all at once: Wine prefixes take seconds
  }
  io.run();
  int status = 0;
  // Columns as wide as their widest cell.
  std::vector<std::array<std::string, 11>> table{{"ENGINE", "DRIVER", "RUNTIME", "PRODUCT",
                                                  "VERSION", "DEFINITIONS", "STATE", "PID",
                                                  "UPTIME", "RESTARTS", "LAST UPDATE"}};
  for (const auto& r : rows) {
    table.push_back({r.name, r.driver, r.runtime, r.product, r.version, r.definitions, r.state,
                     r.pid, r.uptime, r.restarts, r.last_update});
    for (std::size_t i = 0; i < r.instances.size(); ++i) {
      const auto& in = r.instances[i];
      table.push_back({r.name + "#" + std::to_string(i + 1), "", "", "", "", "", in.state, in.pid,
                       in.uptime, in.restarts, ""});
    }
    // Not configured is the user's choice (a vendor's server they do not have), not a fault.
    if (r.state != "ok" && r.state != "ready" && r.state.rfind("not configured", 0) != 0) {
      status = 2;
    }
  }
  std::array<std::size_t, 11> width{};
  for (const auto& row : table) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : table) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) {
        line += std::string(width[c] - row[c].size() + 2, ' ');
      }
    }
    std::printf("%s\n", line.c_str());
  }
  if (global.verbose) { // where each came from: a package's, the source tree's, --engines-dir
    std::printf("\n");
    for (const auto& r : rows) {
      std::printf("%-*s  %s\n", static_cast<int>(width[0]), r.name.c_str(),
                  r.dir.empty() ? "-" : r.dir.c_str());
    }
  }
  return status;
}

} // namespace pss::cli

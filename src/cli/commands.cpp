#include "cli/commands.hpp"

#include "backend/local.hpp"
#include "engine/engine_set.hpp"
#include "model/analysis.hpp"
#include "util/temp_file.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

struct Builtin {
  const char* name;
  const char* usage;
  const char* help;
};
constexpr Builtin k_builtins[] = {
    {"info", "info", "the engine's identity, versions and resolved environment (JSON)"},
    {"scan_file", "scan_file FILE...", "scan files and print each Analysis (JSON)"},
};

int list_commands(const engine::Manifest& m) {
  std::printf("Commands of engine %s (%s, %s):\n", m.name.c_str(), m.product.c_str(),
              m.vendor.c_str());
  for (const auto& b : k_builtins) {
    std::printf("  %-22s %s\n", b.usage, b.help);
  }
  for (const auto& [name, spec] : m.commands) {
    std::string usage = name + " [ARGS...]";
    std::printf("  %-22s %s\n", usage.c_str(), spec.help.empty() ? "-" : spec.help.c_str());
  }
  std::printf("Run one with: pssupervise --engine %s commands NAME [ARGS...]\n", m.name.c_str());
  return 0;
}

// Runs `body` with the engine started, and stops it afterwards whatever happens.
template <typename F>
int with_engine(const GlobalOptions& global, F body) {
  asio::io_context io;
  engine::EngineSet set(global.engines, global.engines_dir, io.get_executor());
  engine::Engine& eng = *set.engines().front();
  int status = 2;
  auto task = [&]() -> asio::awaitable<void> {
    std::exception_ptr ep;
    try {
      co_await set.start_all();
      status = co_await body(eng);
    } catch (...) {
      ep = std::current_exception();
    }
    co_await set.stop_all();
    if (ep) {
      std::rethrow_exception(ep);
    }
  };
  auto done = asio::co_spawn(io, task(), asio::use_future);
  io.run();
  done.get();
  return status;
}

} // namespace

void setup_commands(CLI::App& app, CommandsOptions&) {
  // Everything after NAME belongs to the command, options included (sigtool --list-sigs).
  app.prefix_command(true);
  app.allow_extras(true);
  app.fallthrough(false);
  app.footer("Usage: pssupervise --engine NAME commands [COMMAND [ARGS...]]\n"
             "Without a command, lists the engine's commands.");
}

int run_commands(const GlobalOptions& global, const CommandsOptions& opts) {
  if (global.engines.size() != 1) {
    throw Fatal("commands works on one engine: give --engine NAME");
  }
  auto search = engine::engine_search_path(global.engines_dir);
  auto loaded = engine::load_engine(global.engines.front(), search);
  if (!loaded) {
    throw Fatal(loaded.error().message);
  }
  if (opts.words.empty()) {
    return list_commands(loaded->manifest);
  }
  const std::string& name = opts.words.front();
  std::vector<std::string> args(opts.words.begin() + 1, opts.words.end());

  if (name == "info") {
    return with_engine(global, [&](engine::Engine& e) -> asio::awaitable<int> {
      const auto& m = e.manifest();
      auto v = e.versions();
      nlohmann::ordered_json j;
      j["engine"] = m.name;
      j["product"] = m.product;
      j["vendor"] = m.vendor;
      j["driver"] = m.driver;
      j["runtime"] = m.runtime;
      j["categories"] = m.categories;
      j["engine_version"] = v.engine ? nlohmann::json(*v.engine) : nlohmann::json(nullptr);
      j["definition_version"] =
          v.definitions ? nlohmann::json(*v.definitions) : nlohmann::json(nullptr);
      if (!v.note.empty()) {
        j["note"] = v.note;
      }
      j["folder"] = m.dir.native();
      j["environment"] = loaded->env.vars;
      std::printf("%s\n", j.dump(4, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      co_return 0;
    });
  }
  if (name == "scan_file") {
    if (args.empty()) {
      throw Fatal("usage: pssupervise --engine NAME commands scan_file FILE...");
    }
    return with_engine(global, [&](engine::Engine& e) -> asio::awaitable<int> {
      auto tmp = TempDir::create(temp_base_dir(), "pssupervise-");
      if (!tmp) {
        throw Fatal(tmp.error().message);
      }
      backend::LocalOptions lo;
      lo.fetch.temp_dir = tmp->path();
      backend::LocalBackend backend(lo, {&e});
      std::vector<backend::Job> jobs;
      for (const auto& a : args) {
        backend::Job j;
        j.index = jobs.size();
        j.input = a;
        jobs.push_back(std::move(j));
      }
      int status = 0;
      co_await backend.run(std::move(jobs), [&](backend::JobResult r) {
        for (const auto& ea : r.analyses) {
          nlohmann::ordered_json j;
          j["input"] = r.input;
          j["analysis"] = model::to_json(ea.analysis);
          std::printf("%s\n",
                      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
          if (ea.analysis.error) {
            status = 2;
          } else if (ea.analysis.result == model::Verdict::malicious && status == 0) {
            status = 1;
          }
        }
      });
      co_return status;
    });
  }
  if (!loaded->manifest.commands.contains(name)) {
    std::string known = "info, scan_file";
    for (const auto& [n, spec] : loaded->manifest.commands) {
      known += ", " + n;
    }
    throw Fatal("engine " + loaded->manifest.name + " has no command '" + name +
                "' (known: " + known + ")");
  }
  return with_engine(global, [&](engine::Engine& e) -> asio::awaitable<int> {
    auto out = co_await e.run_command(name, args);
    std::fwrite(out.output.data(), 1, out.output.size(), stdout);
    std::fflush(stdout);
    for (const auto& line : out.errors) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    if (!out.status) {
      throw Fatal(out.output);
    }
    co_return out.status->signal != 0 ? 128 + out.status->signal : out.status->code;
  });
}

} // namespace pss::cli

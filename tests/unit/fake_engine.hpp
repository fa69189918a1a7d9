// A scripted engine for unit tests: answers by the artifact's content or file name, can throw,
// can hold a scan until the test releases it, and counts its scans per artifact path.
#pragma once

#include "engine/engine.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pss::test {

// A manifest with what analyze() and the backends read filled in: "<name>" as the name,
// "<name> product" and "<name> vendor", a 30 s scan timeout.
inline engine::Manifest fake_manifest(const std::string& name,
                                      std::vector<std::string> categories = {"*"}) {
  engine::Manifest m;
  m.name = name;
  m.product = name + " product";
  m.vendor = name + " vendor";
  m.categories = std::move(categories);
  m.driver = "fake";
  m.scan_timeout = std::chrono::seconds(30);
  return m;
}

inline model::Analysis verdict(model::Verdict v, std::optional<std::string> name = {}) {
  model::Analysis a;
  a.result = v;
  a.result_name = std::move(name);
  return a;
}

class FakeEngine final : public engine::Engine {
public:
  // What one scan does.
  struct Script {
    model::Analysis answer = verdict(model::Verdict::benign); // returned as is
    std::optional<std::string> throws; // throw std::runtime_error(*throws) instead
    bool hold = false;                 // suspend until release()
  };

  // What a scan was given (an Artifact itself cannot be copied: it may own a temp file).
  struct Seen {
    std::string name;
    std::filesystem::path path;
    std::string sha256;
    std::string mimetype;
    engine::Clock::time_point deadline;
  };

  explicit FakeEngine(engine::Manifest m) : m_manifest(std::move(m)) {}
  const env::EngineEnv& env() const override { return m_env; }
  explicit FakeEngine(const std::string& name, std::vector<std::string> categories = {"*"})
      : FakeEngine(fake_manifest(name, std::move(categories))) {}

  // The script, first match wins: the file's exact bytes, then its file name, then `otherwise`.
  void on_content(std::string bytes, Script s) { m_by_content.insert_or_assign(bytes, s); }
  void on_name(std::string file_name, Script s) { m_by_name.insert_or_assign(file_name, s); }
  Script otherwise;
  engine::EngineVersions engine_versions; // what versions() returns

  // Wakes every scan held now; later ones hold again as their script says.
  void release() {
    for (Waiter* w : m_waiting) {
      w->released = true;
      w->timer.cancel();
    }
    m_waiting.clear();
  }
  std::size_t held() const { return m_waiting.size(); }

  // Scans begun (counted as they start, before any hold or throw).
  std::size_t scans() const { return m_seen.size(); }
  std::size_t scans_of(const std::filesystem::path& path) const {
    const auto it = m_per_path.find(path);
    return it == m_per_path.end() ? 0 : it->second;
  }
  const std::vector<Seen>& seen() const { return m_seen; }
  int starts = 0;
  int stops = 0;
  // reload(): counted; `on_reload`'s answer (it may change `engine_versions`, or throw), else
  // success.
  std::function<Result<void>()> on_reload;
  int reloads = 0;

  // The ${NAME_*} variables (the updater and the update record read them).
  env::EngineEnv& env() { return m_env; }

  engine::Manifest& manifest() { return m_manifest; }
  const engine::Manifest& manifest() const override { return m_manifest; }
  boost::asio::awaitable<void> start() override {
    ++starts;
    co_return;
  }
  boost::asio::awaitable<void> stop() override {
    ++stops;
    co_return;
  }
  engine::EngineVersions versions() const override { return engine_versions; }
  boost::asio::awaitable<Result<void>> reload() override {
    ++reloads;
    co_return on_reload ? on_reload() : Result<void>{};
  }

  boost::asio::awaitable<model::Analysis> scan(const artifact::Artifact& artifact,
                                               engine::Clock::time_point deadline) override {
    m_seen.push_back({artifact.name, artifact.path, artifact.sha256, artifact.mimetype, deadline});
    ++m_per_path[artifact.path];
    const Script s = script_for(artifact.path);
    if (s.hold) {
      Waiter w{boost::asio::steady_timer(co_await boost::asio::this_coro::executor,
                                         engine::Clock::time_point::max())};
      m_waiting.push_back(&w);
      // Out of the list however the frame ends (the io_context destroyed with it pending).
      struct Unlist {
        FakeEngine& e;
        Waiter* w;
        ~Unlist() { std::erase(e.m_waiting, w); }
      } unlist{*this, &w};
      while (!w.released) {
        co_await w.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      }
    }
    if (s.throws) {
      throw std::runtime_error(*s.throws);
    }
    co_return s.answer;
  }

private:
  struct Waiter {
    boost::asio::steady_timer timer;
    bool released = false;
  };

  Script script_for(const std::filesystem::path& path) const {
    if (!m_by_content.empty()) {
      std::ifstream in(path, std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), {}};
      if (const auto it = m_by_content.find(bytes); it != m_by_content.end()) {
        return it->second;
      }
    }
    if (const auto it = m_by_name.find(path.filename().string()); it != m_by_name.end()) {
      return it->second;
    }
    return otherwise;
  }

  engine::Manifest m_manifest;
  env::EngineEnv m_env;
  std::map<std::string, Script> m_by_content;
  std::map<std::string, Script> m_by_name;
  std::vector<Waiter*> m_waiting;
  std::vector<Seen> m_seen;
  std::map<std::filesystem::path, std::size_t> m_per_path;
};

} // namespace pss::test

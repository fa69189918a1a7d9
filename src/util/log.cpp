#include "util/log.hpp"

#include <mutex>
#include <spdlog/sinks/stdout_sinks.h>

namespace pss::log {

namespace {

struct State {
  std::mutex mutex;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
  std::string pattern = "pssupervise[%n] %l: %v";
};

State& state() {
  static State s;
  return s;
}

} // namespace

std::shared_ptr<spdlog::logger> get(std::string_view name) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  std::string n(name);
  if (auto existing = spdlog::get(n)) {
    return existing;
  }
  auto logger = std::make_shared<spdlog::logger>(n, s.sink);
  logger->set_level(s.level);
  logger->set_pattern(s.pattern);
  spdlog::register_logger(logger);
  return logger;
}

bool set_level(std::string_view level) {
  std::string l(level);
  if (l == "warn") {
    l = "warning";
  }
  auto lvl = spdlog::level::from_str(l);
  if (lvl == spdlog::level::off && l != "off") {
    return false;
  }
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.level = lvl;
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& lg) { lg->set_level(lvl); });
  return true;
}

void set_format(std::string_view format) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.pattern = format == "json"
                  ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","msg":"%v"})"
                  : "pssupervise[%n] %l: %v";
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& lg) {
    lg->set_pattern(s.pattern, spdlog::pattern_time_type::utc);
  });
}

} // namespace pss::log

#include "http/engine_metrics.hpp"

namespace pss::http {

EngineMetrics::EngineMetrics(Metrics& metrics)
    : m_state(
          metrics.gauge("pss_engine_up", "1 for the engine's current state", {"engine", "state"})),
      m_restarts(
          metrics.gauge("pss_engine_restarts", "Restarts of the engine's server", {"engine"})),
      m_updates(metrics.counter("pss_engine_updates_total",
                                "Definitions reloads (SIGHUP, --update-interval) by result: ok, "
                                "failed (the old definitions went on serving)",
                                {"engine", "result"})),
      m_cache(metrics.counter("pss_cache_lookups_total",
                              "Result cache lookups by result: hit (answered without a scan), "
                              "miss (scanned)",
                              {"engine", "result"})) {}

void EngineMetrics::update(const std::vector<backend::EngineState>& states) {
  for (const auto& g : states) {
    for (const char* s : {"down", "starting", "ready", "stopping", "failed", "ok"}) {
      m_state.set({g.engine, s}, g.state == s ? 1 : 0);
    }
    m_restarts.set({g.engine}, g.restarts);
    // The backend keeps totals; a counter only goes up by what is new.
    for (auto [result, total] : {std::pair{"ok", g.updates_ok}, {"failed", g.updates_failed}}) {
      if (double seen = m_updates.value({g.engine, result}); total > seen) {
        m_updates.inc({g.engine, result}, total - seen);
      }
    }
    for (auto [result, total] : {std::pair{"hit", g.cache_hits}, {"miss", g.cache_misses}}) {
      if (double seen = m_cache.value({g.engine, result}); static_cast<double>(total) > seen) {
        m_cache.inc({g.engine, result}, static_cast<double>(total) - seen);
      }
    }
  }
}

} // namespace pss::http

// The engine families every front end's /metrics shows, from its backend's states:
// pss_engine_up{engine,state}, pss_engine_restarts{engine},
// pss_engine_updates_total{engine,result}, pss_cache_lookups_total{engine,result}.
#pragma once

#include "backend/backend.hpp"
#include "http/metrics.hpp"

#include <vector>

namespace pss::http {

class EngineMetrics {
public:
  explicit EngineMetrics(Metrics& metrics);
  // Sets the gauges to `states`; the update counters go up by what is new since the last call.
  void update(const std::vector<backend::EngineState>& states);

private:
  Gauge& m_state;
  Gauge& m_restarts;
  Counter& m_updates;
  Counter& m_cache;
};

} // namespace pss::http

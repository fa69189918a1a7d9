#include "engine/engine.hpp"

#include "engine/clamd/engine.hpp"
#include "engine/icap/engine.hpp"
#include "engine/jsonrpc/engine.hpp"
#include "engine/oneshot/engine.hpp"
#include "model/category.hpp"
#include "wine/nt_path.hpp"

#include <array>
#include <utility>

namespace pss::engine {

namespace {

using Factory = std::unique_ptr<Engine> (*)(Manifest, env::EngineEnv, boost::asio::any_io_executor);

// Drivers are code for protocols; engines (folders) pick one by name.
constexpr std::array<std::pair<std::string_view, Factory>, 4> k_drivers{{
    {"clamd", &clamd::make_clamd_engine},
    {"icap", &icap::make_icap_engine},
    {"jsonrpc", &jsonrpc::make_jsonrpc_engine},
    {"oneshot", &oneshot::make_oneshot_engine},
}};

} // namespace

Result<std::unique_ptr<Engine>> make_engine(Manifest manifest, env::EngineEnv env,
                                            boost::asio::any_io_executor ex) {
  for (const auto& [name, factory] : k_drivers) {
    if (name == manifest.driver) {
      try {
        return factory(std::move(manifest), std::move(env), std::move(ex));
      } catch (const std::exception& e) { // a driver rejecting its part of the manifest
        return make_error(e.what());
      }
    }
  }
  std::string known;
  for (const auto& [name, factory] : k_drivers) {
    known += (known.empty() ? "" : ", ") + std::string(name);
  }
  return make_error("engine " + manifest.name + ": unknown driver \"" + manifest.driver +
                    "\" (known: " + known + ")");
}

boost::asio::awaitable<model::Analysis> analyze(Engine& engine, const artifact::Artifact& artifact,
                                                const model::Bounty& bounty,
                                                Clock::time_point deadline) {
  const Manifest& m = engine.manifest();
  model::Analysis a;
  if (!model::scans(m.categories, artifact.mimetype)) {
    // A skip, not an error: the engine was never meant to see this type.
    a.result = model::Verdict::unknown;
    a.comments = std::string(model::k_skipped_type_unsupported);
    a.metadata["skipped"] = m.name + " does not scan " + artifact.mimetype;
  } else {
    a = co_await engine.scan(artifact, deadline);
  }
  a.product = m.product;
  a.vendor = m.vendor;
  auto v = engine.versions();
  if (!a.analysis_engine_version && v.engine) {
    a.analysis_engine_version = v.engine;
  }
  if (!a.analysis_definition_version && v.definitions) {
    a.analysis_definition_version = v.definitions;
  }
  if (a.result == model::Verdict::malicious) {
    a.confidence = m.malicious_confidence;
  } else if (a.result == model::Verdict::benign) {
    a.confidence = m.benign_confidence;
  }
  model::finalize(a, bounty);
  co_return a;
}

bool Engine::uses_sha256() const {
  return manifest().raw.dump().find("{sha256}") != std::string::npos;
}

std::map<std::string, std::string> artifact_placeholders(const artifact::Artifact& artifact) {
  return {
      {"path", artifact.path.native()},
      {"nt_path", wine::nt_path(artifact.path)},
      {"sha256", artifact.sha256},
      {"mimetype", artifact.mimetype},
      {"size", std::to_string(artifact.size)},
  };
}

} // namespace pss::engine

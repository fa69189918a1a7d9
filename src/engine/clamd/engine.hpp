// The "clamd" driver: scans by INSTREAM against a clamd that the user runs (CLAMD_SOCKET,
// CLAMD_HOST/CLAMD_PORT, as the manifest's "external" names them) or that it starts itself
// from the manifest's "daemon" section, restarting it if it dies mid-run.
#pragma once

#include "engine/engine.hpp"

namespace pss::engine::clamd {

std::unique_ptr<Engine> make_clamd_engine(Manifest manifest, env::EngineEnv env,
                                          boost::asio::any_io_executor ex);

} // namespace pss::engine::clamd

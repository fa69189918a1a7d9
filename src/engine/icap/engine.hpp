// The "icap" driver: scans by RESPMOD against an ICAP antivirus service (RFC 3507) named by
// the manifest's icap.url — somebody else's (ICAP_URL=icap://host:port/service) or one it starts
// from the manifest's "daemon" section and supervises — and reads the verdict from the headers
// the manifest names.
#pragma once

#include "engine/engine.hpp"

namespace pss::engine::icap {

std::unique_ptr<Engine> make_icap_engine(Manifest manifest, env::EngineEnv env,
                                         boost::asio::any_io_executor ex);

} // namespace pss::engine::icap

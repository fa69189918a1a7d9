// The "jsonrpc" driver: a vendor's JSON-RPC 2.0 server (natively or under Wine) kept alive
// by the supervisor, reached over loopback TCP or its stdio. Each bounty is one call; a call
// whose server died is retried once on the restarted server, and a call past its deadline
// gets the server restarted (it is presumed wedged).
#pragma once

#include "engine/engine.hpp"

namespace pss::engine::jsonrpc {

std::unique_ptr<Engine> make_jsonrpc_engine(Manifest manifest, env::EngineEnv env,
                                            boost::asio::any_io_executor ex);

} // namespace pss::engine::jsonrpc

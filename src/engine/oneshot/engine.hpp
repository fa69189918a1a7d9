// The "oneshot" driver: one run of a command-line scanner per bounty, natively or under Wine,
// in its own process group, killed (SIGTERM, then SIGKILL to the group) at its deadline,
// its result taken when it exits (never waiting for end-of-file), its output decoded and
// matched by the manifest's rules.
#pragma once

#include "engine/engine.hpp"

namespace pss::engine::oneshot {

std::unique_ptr<Engine> make_oneshot_engine(Manifest manifest, env::EngineEnv env,
                                            boost::asio::any_io_executor ex);

} // namespace pss::engine::oneshot

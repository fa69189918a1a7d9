// What an ICAP server's OPTIONS answer says (RFC 3507 §4.10.2) that the client obeys, and the
// versions the manifest reads in its headers. Pure.
#pragma once

#include "engine/engine.hpp"
#include "engine/icap/spec.hpp"
#include "icap/response_reader.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace pss::engine::icap {

struct Options {
  std::string istag;                    // the service's tag, quotes stripped ("" if none)
  std::optional<std::uint64_t> preview; // Preview: bytes it wants first; none: no preview
  bool allow_204 = false;               // Allow: 204
  std::optional<int> max_connections;   // Max-Connections
  std::chrono::seconds ttl{0};          // Options-TTL; 0: none given (valid until a change)
  ::pss::icap::Fields fields;           // all of them, for the versions
};

// Error (a sentence naming `server`) unless it is a 200 whose Methods include RESPMOD, and its
// numbers are numbers.
Result<Options> parse_options(const ::pss::icap::Response& r, const std::string& server);

// The ISTag value without its quotes ("\"CI0001-x\"" → "CI0001-x"); "" when absent.
std::string istag_of(const ::pss::icap::Fields& fields);

// Versions from the manifest's version header (groups engine_version, definition_version),
// the definitions falling back on the ISTag, which a service changes when its definitions do.
EngineVersions versions_of(const ::pss::icap::Fields& fields, const Spec& spec);

} // namespace pss::engine::icap

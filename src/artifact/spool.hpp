// Spools a bounty's large data: artifact to a file as the bounty arrives: the JSON body is
// then parsed without it (parsing would copy the URI, decoding it twice more).
#pragma once

#include "util/error.hpp"
#include "util/temp_file.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace pss::artifact {

// data: URIs shorter than this stay in the body: spooling them would save little.
constexpr std::size_t k_spool_min_size = 64 * 1024;

struct SpooledArtifact {
  TempFile file;          // the decoded bytes (its fd closed); removed with the TempFile
  std::uint64_t size = 0; // of the decoded bytes
  std::string body;       // the bounty, its URI replaced by spooled_uri_stand_in(size)
};

// What stands for a spooled artifact's URI in the new body: "data:...(spooled: 52428800
// bytes)". It reads well in logs and printed bounties, model::parse_bounty accepts it, and it
// is not a valid data: URI (no ','), so that fetching it fails loudly instead of scanning
// other bytes.
std::string spooled_uri_stand_in(std::uint64_t size);

// Given a bounty's raw JSON body: if the artifact URI that model::parse_bounty would read
// (the top-level "artifact_uri", the last one if repeated, as nlohmann keeps the last of
// duplicate keys; else "artifact_url") is a JSON string of at least `min_size` bytes that
// starts with "data:" (either case), decodes it straight into a new TempFile in `dir`
// (decode_data_uri: a chunk in memory at a time, at most `max_size` bytes) and returns the
// file, its size and the body with the stand-in in place of the URI. parse_bounty reads that
// body as the same bounty but for artifact_uri.
// nullopt (nothing spooled; parse the body as it is) when there is no such URI, it is not a
// string, is short or not data:, holds an escape or a byte that is not printable ASCII, a
// top-level key holds an escape (it might spell the key), or the body is not valid JSON (its
// own parse then gives the error, with the offsets of the body as sent).
// Errors: the URI's decoding ("data: URI: invalid base64 at offset 7: '!'", "data: URI:
// larger than the 512 MiB limit") and the file's ("cannot write '/tmp/x': ..."); the caller
// may then parse the body as it is, to answer the bounty with the same error later.
// Allocates nothing in proportion to the body but the new body.
Result<std::optional<SpooledArtifact>> spool_data_artifact(std::string_view json_body,
                                                           const std::filesystem::path& dir,
                                                           std::uint64_t max_size,
                                                           std::size_t min_size = k_spool_min_size);

} // namespace pss::artifact

// Turns an input (path, "-", file://, data:, http(s)://) into a local file with its sha256
// and mimetype. Fetched bytes go to a 0600 temp file that is removed with the Artifact.
#pragma once

#include "util/error.hpp"
#include "util/temp_file.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pss::artifact {

struct FetchOptions {
  std::filesystem::path temp_dir;                // where fetched bytes go (0700 dir)
  std::uint64_t max_size = 512ULL * 1024 * 1024; // larger artifacts are refused
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds total_timeout{120}; // whole transfer
  long max_redirects = 5;
  bool allow_file_uris = true; // file:// (and plain paths)
  // Where file:// URIs and plain paths may point. nullopt: anywhere; empty: nowhere (as
  // allow_file_uris = false); otherwise the file's canonical path (symlinks and ".." resolved)
  // must lie inside one of these directories, compared component by component, so neither
  // "../" nor a symlink leads out. The file opened is the one checked.
  std::optional<std::vector<std::filesystem::path>> allowed_file_prefixes;
  // False: http(s) fetches refuse to connect to anything but public addresses (see
  // artifact/address.hpp): loopback, private, link-local, CGNAT, multicast, ... The check is
  // made on each address libcurl is about to connect to, before any packet is sent, so it
  // covers names that resolve to such addresses, DNS rebinding and redirects; proxies from the
  // environment are then not used, since the proxy would make the connection for us.
  bool allow_private_networks = true;
  // False: no libmagic mimetype (it costs ~1 ms per text file); for callers whose engines
  // scan every type and who print no bounty (a Celery worker, the webhook).
  bool identify = true;
  // False: a local file is not read before the scan, so its Artifact has no sha256 (its size
  // is fstat's); for callers that show no bounty and whose engines do not use the digest.
  // Bytes we download or spool (http, data:, stdin) are hashed as they arrive regardless.
  bool digest = true;
  // Set to true (from any thread): an http(s) download in progress ends within about a
  // second ("cancelled"), e.g. when a service's drain is over.
  std::shared_ptr<const std::atomic<bool>> cancel;
};

struct Artifact {
  std::string name;             // the input as the user gave it
  std::filesystem::path path;   // a local regular file with the bytes
  std::optional<TempFile> temp; // set when we own the bytes (fetched, stdin)
  std::uint64_t size = 0;
  std::string sha256;   // lowercase hex
  std::string mimetype; // libmagic; empty when not identified
};

// Fetches and identifies one input. Errors say which input and why ("'x': No such file or
// directory", "http://h/x: HTTP 404", "data: URI: invalid base64 at offset 7",
// "'big': larger than the 512 MiB limit", "'/etc/passwd': refused: outside the directories
// allowed for local files", "http://127.0.0.1:8080/x: refused: 127.0.0.1 is a loopback address
// (fetching from private networks is not allowed here)"). Plain paths must be regular files
// (not FIFOs, devices or directories) and are used in place; with allowed_file_prefixes, the
// Artifact's path is the canonical one that was checked.
Result<Artifact> fetch(const std::string& input, const FetchOptions& opts);

// Fetches `uri` (any kind above) and returns its bytes in memory, with the same limits.
// Used for small things such as bounty files given as URIs.
Result<std::string> fetch_bytes(const std::string& uri, const FetchOptions& opts);

} // namespace pss::artifact

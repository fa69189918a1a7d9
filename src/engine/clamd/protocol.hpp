// The clamd wire protocol, pure: command framing and reply parsing, tested without sockets.
// See FIELD-NOTES §1: z-framed commands, replies parsed from the end of the line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pss::engine::clamd {

// NUL-delimited ("z") framing: "zPING\0". clamd answers with the same terminator.
std::string frame_command(std::string_view command);

// The 4-byte big-endian length that prefixes each INSTREAM chunk (0 ends the stream).
std::string chunk_header(std::uint32_t length);

// Largest chunk we send; clamd's own client sends about BUFSIZ.
inline constexpr std::size_t k_max_chunk = 64 * 1024;

struct Reply {
  enum class Kind {
    clean,           // "<path>: OK"
    found,           // "<path>: <Name> FOUND" (a name is required)
    error,           // "... ERROR" (scan failure or protocol error such as the size limit)
    timeout,         // "COMMAND READ TIMED OUT"
    unknown_command, // "UNKNOWN COMMAND"
    other            // anything else (PONG, version strings, ...)
  };
  Kind kind = Kind::other;
  std::string name;     // malware name for `found`, ".UNOFFICIAL" removed
  std::string raw_name; // malware name as clamd printed it
  std::string message;  // error text without " ERROR", or the whole line for `other`
};

// Parses one reply line (terminator already removed; a trailing '\n' or '\0' is tolerated).
// Parses from the end of the line, as clamdscan does: paths and names may contain ": ".
Reply parse_reply(std::string_view line);

struct Version {
  std::string engine;                     // "1.4.6"
  std::optional<std::string> definitions; // "27000"; absent with a custom-only database
  std::optional<std::string> db_date;     // "Mon Jun  2 08:22:33 2025"
};
// "ClamAV 1.4.6/27000/Mon Jun  2 08:22:33 2025" or "ClamAV 1.4.6"; nullopt otherwise.
std::optional<Version> parse_version(std::string_view line);

} // namespace pss::engine::clamd

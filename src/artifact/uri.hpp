// Classifies an input string and parses the URI forms we fetch: file://, data:, http(s)://.
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace pss::artifact {

enum class InputKind { path, stdin_, file_uri, data_uri, http_uri };

// "-" → stdin_; "file:" / "data:" / "http:" / "https:" (scheme case-insensitive) → URI kinds;
// anything else (including "./x:y" and names with spaces) → path.
InputKind classify_input(std::string_view input);

// file:///abs/path or file://localhost/abs/path → "/abs/path" (percent-decoded).
// Error for other hosts, relative forms and NUL bytes.
Result<std::string> file_uri_path(std::string_view uri);
// The file:// URI of an absolute local path, percent-encoding all but unreserved bytes and '/'.
std::string file_uri(const std::filesystem::path& p);

struct DataUri {
  std::string mediatype; // as given, e.g. "text/plain;charset=US-ASCII"; may be empty
  std::string bytes;     // the decoded payload
};
// data:[<mediatype>][;base64],<data>. Base64 accepts padding and ignores whitespace;
// non-base64 data is percent-decoded. Error names what is malformed.
Result<DataUri> parse_data_uri(std::string_view uri);

// Where decode_data_uri puts the bytes, a piece at a time; an Error stops the decoding.
using ByteSink = std::function<Result<void>(std::string_view)>;

// How much of a data: URI decode_data_uri reads and writes at a time.
constexpr std::size_t k_data_uri_chunk = 64 * 1024;

// Decodes a data: URI's payload as parse_data_uri does (the same syntax, bytes and errors)
// straight into `sink`, in pieces of at most `chunk_size` bytes: no more than a chunk of the
// bytes is ever held. Returns how many bytes went to the sink. Errors: parse_data_uri's
// ("data: URI: invalid base64 at offset 7: '!'"; a malformed percent-escape before any base64
// error, wherever it lies, as parse_data_uri finds it first); "data: URI: larger than the
// 512 MiB limit" when the bytes exceed `max_size` (only once the whole URI is known to be
// well-formed: its own errors come first); the sink's Error as it is. On an error, the sink
// may already have had some of the bytes. `chunk_size` is for tests (tiny chunks put escapes
// and base64 quanta across boundaries).
Result<std::uint64_t> decode_data_uri(std::string_view uri, std::uint64_t max_size,
                                      const ByteSink& sink,
                                      std::size_t chunk_size = k_data_uri_chunk);

// Standard base64 (RFC 4648) decode; whitespace ignored; also accepts the URL-safe alphabet.
Result<std::string> base64_decode(std::string_view s);

} // namespace pss::artifact

// Classifies an input string and parses the URI forms we fetch: file://, data:, http(s)://.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace pss::artifact {

enum class InputKind { path, stdin_, file_uri, data_uri, http_uri };

// "-" → stdin_; "file:" / "data:" / "http:" / "https:" (scheme case-insensitive) → URI kinds;
// anything else (including "./x:y" and names with spaces) → path.
InputKind classify_input(std::string_view input);

// RFC 3986 percent-decoding; Error on a truncated or non-hex escape.
Result<std::string> percent_decode(std::string_view s);

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

// Standard base64 (RFC 4648) decode; whitespace ignored; also accepts the URL-safe alphabet.
Result<std::string> base64_decode(std::string_view s);

} // namespace pss::artifact

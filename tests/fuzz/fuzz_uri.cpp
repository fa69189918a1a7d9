// Fuzzes artifact URI handling without I/O: classify_input, percent_decode, file_uri_path (and
// its round trip through file_uri), parse_data_uri, base64_decode, and decode_data_uri against
// parse_data_uri.
#include "artifact/uri.hpp"
#include "check.hpp"

#include <cstdint>
#include <limits>

using namespace pss::artifact;

namespace {

// decode_data_uri is parse_data_uri a chunk at a time: the same bytes or the same error.
void check_streamed(const std::string& uri, std::size_t chunk) {
  auto whole = parse_data_uri(uri);
  std::string bytes;
  auto n = decode_data_uri(
      uri, std::numeric_limits<std::uint64_t>::max(),
      [&](std::string_view piece) -> pss::Result<void> {
        FUZZ_CHECK(!piece.empty() && piece.size() <= chunk);
        bytes.append(piece);
        return {};
      },
      chunk);
  FUZZ_CHECK(n.has_value() == whole.has_value());
  if (whole) {
    FUZZ_CHECK(*n == bytes.size() && bytes == whole->bytes);
  } else {
    FUZZ_CHECK(n.error().message == whole.error().message);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  InputKind kind = classify_input(in);
  (void)percent_decode(in);
  (void)base64_decode(in);

  if (auto path = file_uri_path(in)) {
    FUZZ_CHECK(kind == InputKind::file_uri);
    FUZZ_CHECK(!path->empty() && path->front() == '/');
    FUZZ_CHECK(path->find('\0') == std::string::npos);
    std::string uri = file_uri(*path);
    FUZZ_CHECK(classify_input(uri) == InputKind::file_uri);
    auto back = file_uri_path(uri);
    FUZZ_CHECK(back.has_value() && *back == *path);
  }
  if (auto d = parse_data_uri(in)) {
    FUZZ_CHECK(kind == InputKind::data_uri);
  }
  // The same bytes behind each scheme, so every parser sees them as a body.
  std::string s(in);
  (void)file_uri_path("file://" + s);
  const std::size_t chunk = 1 + size % 7;
  for (const std::string& uri : {s, "data:" + s, "data:;base64," + s}) {
    check_streamed(uri, chunk);
  }
  return 0;
}

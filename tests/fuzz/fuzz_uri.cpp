// Fuzzes artifact URI handling without I/O: classify_input, percent_decode, file_uri_path (and
// its round trip through file_uri), parse_data_uri, base64_decode.
#include "artifact/uri.hpp"
#include "check.hpp"

using namespace pss::artifact;

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
  (void)parse_data_uri("data:" + s);
  (void)parse_data_uri("data:;base64," + s);
  return 0;
}

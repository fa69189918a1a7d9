// Fuzzes pss::text: every decoder returns valid UTF-8, normalize_newlines leaves no '\r', valid
// UTF-8 passes sanitize_utf8 unchanged (but for a leading BOM), parse_encoding round trips.
#include "check.hpp"
#include "util/text.hpp"

using namespace pss::text;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  for (Encoding e : {Encoding::utf8, Encoding::cp1252, Encoding::utf16le, Encoding::detect}) {
    std::string out = decode(in, e);
    FUZZ_CHECK(is_valid_utf8(out));
    std::string lf = normalize_newlines(out);
    FUZZ_CHECK(is_valid_utf8(lf));
    FUZZ_CHECK(lf.find('\r') == std::string::npos);
    FUZZ_CHECK(normalize(in, e) == lf);
  }
  FUZZ_CHECK(is_valid_utf8(cp1252_to_utf8(in)));
  FUZZ_CHECK(is_valid_utf8(utf16le_to_utf8(in)));
  std::string clean = sanitize_utf8(in);
  FUZZ_CHECK(is_valid_utf8(clean));
  FUZZ_CHECK(sanitize_utf8(clean) == clean || clean.starts_with("\xEF\xBB\xBF"));
  if (is_valid_utf8(in)) {
    FUZZ_CHECK(clean == in || (in.starts_with("\xEF\xBB\xBF") && clean == in.substr(3)));
  }
  FUZZ_CHECK(detect_encoding(in) != Encoding::detect);
  if (auto e = parse_encoding(in)) {
    FUZZ_CHECK(parse_encoding(to_string(*e)) == e);
  }
  return 0;
}

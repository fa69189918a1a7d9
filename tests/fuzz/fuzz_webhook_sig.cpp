// Fuzzes pss::signature_matches with the input split into key, body and signature; the real
// HMAC (either case) must match, and a signature must match only if it is that HMAC.
#include "check.hpp"
#include "util/hmac.hpp"

#include <algorithm>
#include <cctype>

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  std::string_view key = pss::fuzz::take(in);
  std::string_view sig = pss::fuzz::take(in);
  std::string_view body = in;

  std::string mac = pss::hmac_sha256_hex(key, body);
  FUZZ_CHECK(mac.size() == 64);
  FUZZ_CHECK(pss::signature_matches(key, body, mac));
  FUZZ_CHECK(pss::signature_matches(key, body, upper(mac)));
  bool ok = pss::signature_matches(key, body, sig);
  FUZZ_CHECK(ok == (sig.size() == 64 && lower(sig) == mac));
  return 0;
}

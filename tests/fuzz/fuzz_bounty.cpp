// Fuzzes pss::model::parse_bounty; a parsed bounty must survive to_json → parse_bounty, and the
// second to_json must equal the first.
#include "check.hpp"
#include "model/bounty.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = pss::fuzz::as_view(data, size);
  auto b = pss::model::parse_bounty(text);
  if (!b) {
    FUZZ_CHECK(!b.error().message.empty());
    return 0;
  }
  auto j1 = pss::model::to_json(*b);
  auto again = pss::model::parse_bounty(j1.dump());
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(pss::model::to_json(*again) == j1);
  return 0;
}

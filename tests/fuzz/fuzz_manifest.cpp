// Fuzzes pss::engine::parse_manifest on any JSON document (the engine dir is never read).
#include "check.hpp"
#include "engine/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = nlohmann::json::parse(pss::fuzz::as_view(data, size), nullptr, false);
  if (j.is_discarded()) {
    return 0;
  }
  auto m = pss::engine::parse_manifest(j, "/nonexistent/pss-fuzz/engine");
  if (!m) {
    FUZZ_CHECK(!m.error().message.empty());
  }
  return 0;
}

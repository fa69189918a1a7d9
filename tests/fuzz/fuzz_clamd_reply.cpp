// Fuzzes the clamd protocol parsers: parse_reply and parse_version, on the raw input and with
// the framing suffixes clamd adds.
#include "check.hpp"
#include "engine/clamd/protocol.hpp"

using namespace pss::engine::clamd;

namespace {

void one(std::string_view line) {
  Reply r = parse_reply(line);
  if (r.kind == Reply::Kind::found) {
    FUZZ_CHECK(r.name.size() <= r.raw_name.size());
  }
  if (auto v = parse_version(line)) {
    FUZZ_CHECK(!v->engine.empty());
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string s(pss::fuzz::as_view(data, size));
  one(s);
  one(s + '\0');
  one(s + '\n');
  one("stream: " + s + " FOUND");
  one("ClamAV " + s);
  std::string framed = frame_command(s);
  FUZZ_CHECK(framed.size() == s.size() + 2 && framed.front() == 'z' && framed.back() == '\0');
  return 0;
}

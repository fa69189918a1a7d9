// Fuzzes pss::engine::jsonrpc::Decoder for both framings and each encoding. The first bytes of
// the input choose the piece sizes the rest is fed in. Every message must be valid UTF-8, and
// feeding piece by piece must give the same messages as feeding everything at once, up to the
// first error (the limits are checked against what is buffered, so an error may come at a
// different point).
#include "check.hpp"
#include "engine/jsonrpc/framing.hpp"

#include <vector>

using namespace pss::engine::jsonrpc;
using pss::text::Encoding;

namespace {

struct Outcome {
  std::vector<std::string> messages;
  bool error = false;
  std::size_t buffered = 0;
};

// Drains the decoder; false once it has failed.
bool drain(Decoder& d, Outcome& out) {
  for (;;) {
    auto r = d.next();
    if (!r) {
      FUZZ_CHECK(!r.error().message.empty());
      out.error = true;
      return false;
    }
    if (!*r) {
      return true;
    }
    FUZZ_CHECK(pss::text::is_valid_utf8(**r));
    out.messages.push_back(std::move(**r));
  }
}

Outcome run(Framing f, Encoding e, std::string_view sizes, std::string_view body) {
  Decoder d(f, e, 4096);
  Outcome out;
  std::size_t i = 0;
  while (!body.empty()) {
    std::size_t n =
        sizes.empty() ? body.size() : 1 + static_cast<unsigned char>(sizes[i++ % sizes.size()]);
    d.feed(body.substr(0, n));
    body.remove_prefix(std::min(n, body.size()));
    if (!drain(d, out)) {
      return out;
    }
  }
  drain(d, out);
  out.buffered = d.buffered();
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  std::string_view sizes = pss::fuzz::take(in);
  for (Framing f : {Framing::line, Framing::content_length}) {
    for (Encoding e : {Encoding::utf8, Encoding::cp1252, Encoding::utf16le, Encoding::detect}) {
      Outcome whole = run(f, e, {}, in);
      Outcome pieces = run(f, e, sizes.empty() ? std::string_view("\0", 1) : sizes, in);
      std::size_t common = std::min(whole.messages.size(), pieces.messages.size());
      for (std::size_t k = 0; k < common; ++k) {
        FUZZ_CHECK(whole.messages[k] == pieces.messages[k]);
      }
      if (!whole.error && !pieces.error) {
        FUZZ_CHECK(whole.messages.size() == pieces.messages.size());
        FUZZ_CHECK(whole.buffered == pieces.buffered);
      }
    }
  }
  FUZZ_CHECK(frame(in, Framing::line).size() == in.size() + 1);
  return 0;
}

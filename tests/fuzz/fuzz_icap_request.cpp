// Fuzzes the ICAP server's request reader (icap/request_reader) from raw bytes, as the server
// runs it without its socket: requests read one after another from the same bytes (keep-alive),
// a preview's end either continued (the server's 100 Continue) or answered there (the
// connection then closes), and the end of the bytes as the peer closing. The first byte chooses
// small limits (so that 413 is reached) and whether previews are continued; a length-prefixed
// piece gives the sizes the bytes arrive in.
// Invariants: the same events, bodies and errors however the bytes are split (whole, in the
// given pieces, byte by byte); every error is a status the server answers (400, 413, 501, 505)
// with a message; a head event comes once per request, before any body byte; a request read
// has a known method, ICAP/1.0, an Encapsulated field fitting its method, and its HTTP heads
// exactly as long as the offsets say; a body never exceeds the bytes fed, and a preview never
// the size it announced; the heads held stay within the limits; nothing throws.
#include "check.hpp"
#include "icap/request_reader.hpp"

#include <string>
#include <vector>

using namespace pss::icap;
using Event = RequestReader::Event;

namespace {

struct Transcript {
  std::vector<std::string> events; // "head RESPMOD", "preview 20", "complete 68", "error 400"
  // The bodies of the requests read whole (or to an answered preview): of one cut short by an
  // error, how much came out before it depends on the split, and the server drops it.
  std::string bodies;
  bool operator==(const Transcript&) const = default;
};

void check_request(const Request& r, const RequestReader::Limits& limits) {
  const auto& m = r.line.method;
  FUZZ_CHECK(m == "OPTIONS" || m == "REQMOD" || m == "RESPMOD");
  FUZZ_CHECK(r.line.version == "ICAP/1.0");
  FUZZ_CHECK(!r.url.service.empty());
  const Encapsulated& e = r.encapsulated;
  using Body = Encapsulated::Body;
  if (m == "OPTIONS") {
    FUZZ_CHECK(!e.req_hdr && !e.res_hdr);
    FUZZ_CHECK(e.body == Body::null_body || e.body == Body::opt_body);
  } else if (m == "REQMOD") {
    FUZZ_CHECK(!e.res_hdr && (e.body == Body::null_body || e.body == Body::req_body));
  } else {
    FUZZ_CHECK(e.body == Body::null_body || e.body == Body::res_body);
  }
  FUZZ_CHECK(e.body_offset <= limits.heads);
  FUZZ_CHECK(r.req_hdr.size() == e.req_hdr_size());
  FUZZ_CHECK(r.res_hdr.size() == e.res_hdr_size());
  FUZZ_CHECK(r.req_hdr.size() + r.res_hdr.size() == e.body_offset);
  if (e.req_hdr) {
    FUZZ_CHECK(!r.req_head.start_line.empty());
  }
  if (e.res_hdr) {
    FUZZ_CHECK(!r.res_head.start_line.empty());
  }
  FUZZ_CHECK(!r.preview || e.has_body());
}

// Reads `in` as one connection, the bytes arriving in pieces whose sizes come from `sizes`
// (cycled; an empty `sizes`: all at once).
Transcript run(std::string_view in, std::string_view sizes, const RequestReader::Limits& limits,
               bool continue_previews) {
  Transcript t;
  std::size_t arrived = 0, used = 0, next_size = 0;
  RequestReader reader(limits);
  bool head_seen = false;
  std::string request_body;
  for (;;) {
    std::string body;
    const std::string_view available = in.substr(used, arrived - used);
    auto p = reader.feed(available, body);
    if (!p) {
      const int s = p.error().status;
      FUZZ_CHECK(s == 400 || s == 413 || s == 501 || s == 505);
      FUZZ_CHECK(!p.error().message.empty());
      t.events.push_back("error " + std::to_string(s));
      return t;
    }
    FUZZ_CHECK(p->used <= available.size());
    FUZZ_CHECK(body.size() <= p->used);
    FUZZ_CHECK(body.empty() || head_seen);
    request_body += body;
    used += p->used;
    if (reader.in_preview() && reader.request().preview) {
      FUZZ_CHECK(reader.body_size() <= *reader.request().preview);
    }
    switch (p->event) {
    case Event::head:
      FUZZ_CHECK(!head_seen);
      head_seen = true;
      check_request(reader.request(), limits);
      t.events.push_back("head " + reader.request().line.method);
      break;
    case Event::preview_end:
      FUZZ_CHECK(reader.at_preview_end());
      t.events.push_back("preview " + std::to_string(reader.body_size()));
      if (!continue_previews) {
        t.bodies += request_body;
        return t; // answered at the preview: the server closes the connection
      }
      reader.continue_after_preview();
      break;
    case Event::complete:
      FUZZ_CHECK(head_seen && reader.complete());
      t.events.push_back("complete " + std::to_string(reader.body_size()));
      FUZZ_CHECK(request_body.size() == reader.body_size());
      t.bodies += request_body;
      request_body.clear();
      if (!reader.request().keep_alive) {
        return t;
      }
      reader = RequestReader(limits); // the next request on the connection
      head_seen = false;
      break;
    case Event::more:
      FUZZ_CHECK(used == arrived);
      if (arrived == in.size()) {
        if (auto e = reader.at_eof()) {
          FUZZ_CHECK(e->status == 400 && !e->message.empty());
          t.events.push_back("eof " + std::to_string(e->status));
        } else {
          FUZZ_CHECK(!reader.started());
        }
        return t;
      }
      if (sizes.empty()) {
        arrived = in.size();
      } else {
        const std::size_t n = 1 + static_cast<unsigned char>(sizes[next_size++ % sizes.size()]);
        arrived = std::min(in.size(), arrived + n);
      }
      break;
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  if (in.empty()) {
    return 0;
  }
  const auto mode = static_cast<unsigned char>(in.front());
  in.remove_prefix(1);
  RequestReader::Limits limits;
  if (mode & 1) { // small limits: 413 within reach
    limits.head = {64, 256, 6};
    limits.heads = 128;
    limits.http_head = {48, 128, 6};
    limits.chunked.line = 16;
    limits.chunked.trailers = 64;
  }
  const bool continue_previews = (mode & 2) == 0;
  const std::string_view sizes = pss::fuzz::take(in);

  const Transcript whole = run(in, {}, limits, continue_previews);
  const Transcript pieces = run(in, sizes, limits, continue_previews);
  FUZZ_CHECK(whole == pieces);
  if (in.size() <= 4096) {
    const Transcript bytes = run(in, std::string_view("\0", 1), limits, continue_previews);
    FUZZ_CHECK(whole == bytes);
  }
  return 0;
}

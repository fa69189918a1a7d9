// Fuzzes what a clamd INSTREAM exchange comes to from the client's side: the input is what a
// (hostile or broken) clamd sends back, read in pieces by ReplyReader as the client reads it,
// then the connection ends (EOF, a reset or a timeout) and the outcome becomes an Analysis
// (to_analysis), as the clamd engine does. The first byte chooses how the connection ends and
// whether the bytes are repeated into a line over the reply limit; a length-prefixed piece
// gives the read sizes. Invariants: every stream ends in exactly one outcome (a reply or an
// error), the same however the reads split it; the reply kept is the bytes before the first
// terminator and never more than k_max_reply; unknown always says why, malicious always names
// the signature.
#include "check.hpp"
#include "engine/clamd/outcome.hpp"
#include "engine/clamd/reply_reader.hpp"

using namespace pss::engine::clamd;
using pss::model::Verdict;

namespace {

enum class End { eof, reset, timeout };

struct Result {
  bool complete = false;
  std::string text;
  Outcome outcome;
};

// The client's Exchange::reply: feed each read until complete; at the end of the bytes the
// connection ends as `end` says.
Result run(std::string_view stream, std::string_view sizes, End end) {
  std::size_t scale = stream.size() > ReplyReader::k_max_reply ? 256 : 1;
  ReplyReader reader;
  std::size_t i = 0;
  while (!stream.empty()) {
    // Reads of 1 to 256 bytes, 256 times that for a huge line (reads of a few bytes over
    // 64 KiB would spend the fuzzer's time on one input).
    std::size_t n = sizes.empty()
                        ? stream.size()
                        : (1 + static_cast<unsigned char>(sizes[i++ % sizes.size()])) * scale;
    n = std::min(n, stream.size());
    bool done = reader.feed(stream.substr(0, n));
    FUZZ_CHECK(done == reader.complete());
    FUZZ_CHECK(reader.text().size() <= ReplyReader::k_max_reply);
    stream.remove_prefix(n);
    if (done) {
      // What clamd sends after its reply changes nothing.
      std::string before = reader.text();
      FUZZ_CHECK(reader.feed(stream));
      FUZZ_CHECK(reader.text() == before);
      break;
    }
  }
  Result r;
  r.complete = reader.complete();
  r.text = reader.text();
  if (auto o = reader.outcome(end == End::eof)) {
    r.outcome = std::move(*o);
  } else {
    // The client's failure(): no usable reply before the connection ended.
    FUZZ_CHECK(!r.complete);
    FUZZ_CHECK(end != End::eof || r.text.empty());
    r.outcome.error = end == End::timeout ? "timeout: clamd did not answer in time"
                                          : "clamd: no reply to INSTREAM: connection reset";
    r.outcome.connection_lost = end != End::timeout;
    r.outcome.timed_out = end == End::timeout;
  }
  return r;
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.reply.has_value() != b.reply.has_value()) {
    return false;
  }
  if (a.reply && (a.reply->kind != b.reply->kind || a.reply->name != b.reply->name ||
                  a.reply->raw_name != b.reply->raw_name || a.reply->message != b.reply->message)) {
    return false;
  }
  return a.error == b.error && a.connection_lost == b.connection_lost && a.timed_out == b.timed_out;
}

void check_analysis(const Outcome& o) {
  // Exactly one outcome: a reply, or an error saying why there is none.
  FUZZ_CHECK(o.reply.has_value() != !o.error.empty());
  pss::model::Analysis a = to_analysis(o);
  switch (a.result) {
  case Verdict::benign:
    FUZZ_CHECK(!a.error && !a.result_name);
    break;
  case Verdict::malicious:
    FUZZ_CHECK(!a.error && a.result_name && !a.result_name->empty());
    break;
  case Verdict::unknown:
    FUZZ_CHECK(a.error && !a.error->empty());
    break;
  default:
    FUZZ_CHECK(false && "clamd gives benign, malicious or unknown");
  }
  if (o.reply && o.reply->kind == Reply::Kind::clean) {
    FUZZ_CHECK(a.result == Verdict::benign);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);
  if (in.empty()) {
    return 0;
  }
  auto mode = static_cast<unsigned char>(in.front());
  in.remove_prefix(1);
  End end = static_cast<End>((mode & 3) % 3);
  std::string_view sizes = pss::fuzz::take(in);
  std::string stream(in);
  if ((mode & 4) && !stream.empty()) { // a huge line: the bytes repeated past the limit
    while (stream.size() <= ReplyReader::k_max_reply + 16) {
      stream += stream; // doubling: a handful of appends
    }
  }

  Result whole = run(stream, {}, end);
  Result pieces = run(stream, sizes, end);
  FUZZ_CHECK(whole.complete == pieces.complete && whole.text == pieces.text);
  FUZZ_CHECK(same(whole.outcome, pieces.outcome));
  if (stream.size() <= 4096) {
    Result bytes = run(stream, std::string_view("\0", 1), end);
    FUZZ_CHECK(same(whole.outcome, bytes.outcome));
  }

  // The reply is the bytes before the first NUL or newline, at most k_max_reply of them.
  auto term = stream.find_first_of(std::string_view("\0\n", 2));
  std::size_t line = std::min(term, stream.size());
  FUZZ_CHECK(whole.text == stream.substr(0, std::min(line, ReplyReader::k_max_reply)));
  FUZZ_CHECK(whole.complete == (term != std::string::npos || line > ReplyReader::k_max_reply));
  if (line > ReplyReader::k_max_reply) {
    FUZZ_CHECK(!whole.outcome.reply);
  }
  check_analysis(whole.outcome);
  return 0;
}

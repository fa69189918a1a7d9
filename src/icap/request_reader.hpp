// An ICAP request (RFC 3507 §4.3.2), read from bytes as they arrive, as a server reads it: the
// request line and fields, the encapsulated HTTP heads the Encapsulated field announces (kept
// as sent, to be echoed byte for byte), then the chunked body, whose bytes are handed to the
// caller and never kept. Previews (§4.5): a preview ending in "0" stops at an event of its own
// (the server answers now, or sends "100 Continue" and reads the rest); "0; ieof" ends the body.
// Bounded: heads by limits, the body by nothing it holds. Pure; no sockets.
#pragma once

#include "icap/chunked.hpp"
#include "icap/encapsulated.hpp"
#include "icap/head.hpp"

#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pss::icap {

struct Request {
  RequestLine line;          // method (OPTIONS, REQMOD or RESPMOD), URI, version (ICAP/1.0)
  Url url;                   // the URI parsed: service, args
  Fields fields;             // the ICAP head's fields
  Encapsulated encapsulated; // null-body=0 for an OPTIONS without the field
  // The encapsulated HTTP heads exactly as sent (empty when absent), each through its empty
  // line, and each parsed: start line and fields.
  std::string req_hdr;
  std::string res_hdr;
  Head req_head;
  Head res_head;
  std::optional<std::uint64_t> preview; // Preview: n (only when a body follows)
  bool allow_204 = false;               // "Allow: 204"
  bool keep_alive = true;               // no "Connection: close"

  bool is_options() const { return line.method == "OPTIONS"; }
  bool has_body() const { return encapsulated.has_body(); }
};

// Why a request cannot be read, and the ICAP status to answer it with: 400 malformed, 413 a
// head or the encapsulated heads over their limits, 501 an unknown method, 505 another ICAP
// version. The connection is closed after it: what follows cannot be framed.
struct RequestError {
  RequestError() = default;
  // Two arguments, so that ReadResult<std::size_t> never takes a number for an error.
  RequestError(int s, std::string m) : status(s), message(std::move(m)) {}
  int status = 400;
  std::string message;
};
template <typename T>
using ReadResult = boost::system::result<T, RequestError>;
// What ReadResult::value() throws on an error (Fatal with the message).
[[noreturn]] void throw_exception_from_error(const RequestError& e,
                                             const boost::source_location& loc);

class RequestReader {
public:
  struct Limits {
    HeadLimits head;               // the ICAP head (its line limit refuses a long request line)
    std::size_t heads = 64 * 1024; // the encapsulated HTTP heads together (the body's offset)
    HeadLimits http_head{16 * 1024, 64 * 1024, 200}; // each encapsulated head, parsed
    ChunkedDecoder::Limits chunked;
  };
  RequestReader() : RequestReader(Limits{}) {}
  explicit RequestReader(Limits limits) : m_limits(limits), m_chunks(limits.chunked) {}

  enum class Event {
    more,        // all of the input was used; the message is not complete
    head,        // the ICAP head and the encapsulated heads are read: request() (once)
    preview_end, // a preview ended without ieof: answer now, or continue_after_preview()
    complete,    // the message is complete (after the body, if any)
  };
  struct Progress {
    Event event = Event::more;
    std::size_t used = 0; // bytes of the input read (what follows a complete message is not)
  };
  // Reads what it can of `in`, stopping after each event. Body bytes are appended to `body`
  // (at most in.size() of them per call); the caller spools them. While at preview_end, and
  // once complete, nothing more is read (used 0).
  ReadResult<Progress> feed(std::string_view in, std::string& body);
  // After preview_end, once the server has sent "100 Continue": the rest of the body is read
  // as a new chunked body.
  void continue_after_preview();
  // The connection ended (EOF): the error for a message cut short (400 naming where), or
  // nothing when no byte of a request came or the message was complete.
  std::optional<RequestError> at_eof() const;

  const Request& request() const { return m_request; }
  bool started() const { return m_started; }
  // The ICAP head and the encapsulated heads are read (the head event came).
  bool has_head() const { return m_state != State::icap_head && m_state != State::http_heads; }
  bool complete() const { return m_state == State::done; }
  bool at_preview_end() const { return m_state == State::preview_end; }
  // In the preview (before any continue_after_preview()).
  bool in_preview() const { return m_request.preview.has_value() && !m_continued; }
  // Body bytes decoded so far, preview included.
  std::uint64_t body_size() const { return m_body_before + m_chunks.total(); }
  // Where the reader is, for messages: "in the ICAP head", "in the body after 1200 bytes".
  std::string where() const;

private:
  enum class State { icap_head, http_heads, body, preview_end, done };
  ReadResult<std::size_t> read_icap_head(std::string_view in);
  ReadResult<void> icap_head_done();
  ReadResult<void> http_heads_done();
  ReadResult<Progress> read_body(std::string_view in, std::string& body);

  Limits m_limits;
  State m_state = State::icap_head;
  bool m_started = false;
  std::string m_head;           // the ICAP head, then the encapsulated heads, as they arrive
  std::size_t m_line_start = 0; // where the ICAP head's current line starts in m_head
  std::size_t m_fields = 0;     // fields in the ICAP head so far
  Request m_request;
  ChunkedDecoder m_chunks;
  bool m_continued = false;
  std::uint64_t m_body_before = 0; // the preview's bytes, once continued
};

} // namespace pss::icap

// An ICAP server's answer (RFC 3507 §4.3.3), read from bytes as they arrive: the status line
// and fields, the encapsulated HTTP heads the Encapsulated field announces, then the chunked
// body, of which only a prefix is kept (memory stays bounded whatever the server sends); or a
// "100 Continue" as an event of its own. Pure; no sockets.
#pragma once

#include "icap/chunked.hpp"
#include "icap/encapsulated.hpp"
#include "icap/head.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pss::icap {

// An encapsulated HTTP head: its start line and fields; `status` and `reason` for a response.
struct HttpHead {
  std::string start_line; // "HTTP/1.0 403 Forbidden" or "GET /x HTTP/1.1"
  int status = 0;         // a response's status; 0 for a request or a start line we cannot read
  std::string reason;
  Fields fields;
};

struct Response {
  StatusLine status; // ICAP/1.0 200 OK
  Fields fields;     // the ICAP head's fields, folded lines joined by "\n"
  // Absent when the answer has no Encapsulated field (c-icap's 204 and its errors have none):
  // then no heads and no body follow.
  std::optional<Encapsulated> encapsulated;
  std::optional<HttpHead> req_head; // the encapsulated HTTP request head (REQMOD answers)
  std::optional<HttpHead> res_head; // the encapsulated HTTP response head
  std::string body_prefix;          // the body's first bytes, at most Limits::body_prefix
  std::uint64_t body_size = 0;      // the body's whole size
};

// "HTTP/1.1 200 OK" → 200 and "OK"; Error for anything else.
Result<std::pair<int, std::string>> parse_http_status_line(std::string_view line);

class ResponseReader {
public:
  struct Limits {
    HeadLimits head;                     // the ICAP head, and each encapsulated HTTP head
    std::size_t heads = 64 * 1024;       // all encapsulated heads together (Encapsulated offsets)
    std::size_t body_prefix = 64 * 1024; // body bytes kept; the rest is only counted
    ChunkedDecoder::Limits chunked;
  };
  ResponseReader() = default;
  explicit ResponseReader(Limits limits) : m_limits(limits), m_chunks(limits.chunked) {}

  enum class Event {
    more,         // all of the input was used and the message is not complete yet
    continue_100, // an "ICAP/1.0 100 Continue" was read: send the rest; the final answer follows
    response,     // a final answer is complete: response()
  };
  struct Progress {
    Event event = Event::more;
    std::size_t used = 0; // bytes of the input read; what follows a complete message is not
  };
  // Reads what it can of `in`, stopping after a 100 Continue or a complete answer. Errors say
  // what is malformed ("the answer's Encapsulated field: ..."). After a response, feeding
  // more is an error: whatever follows an answer on a connection belongs to no request.
  Result<Progress> feed(std::string_view in);

  // The final answer (after Event::response).
  const Response& response() const { return m_response; }
  // Any byte of an answer read yet (a 100 Continue counts): a request that got none may be
  // sent again on a new connection.
  bool started() const { return m_started; }
  // Where an answer cut short stopped, for messages: "in the ICAP head", "in the body after
  // 1200 bytes"...
  std::string where() const;

private:
  enum class State { icap_head, http_heads, body, done };
  Result<bool> head_done(std::string_view head); // true: a 100 Continue
  Result<void> heads_done();
  Limits m_limits;
  State m_state = State::icap_head;
  std::string m_buf; // the head being read
  ChunkedDecoder m_chunks;
  std::string m_scratch; // decoded body bytes of one feed
  Response m_response;
  bool m_started = false;
};

} // namespace pss::icap

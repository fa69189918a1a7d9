// The chunked coding of an ICAP body (RFC 7230 §4.1) with ICAP's "ieof" extension on the last
// chunk (RFC 3507 §4.5): a preview ends with "0" when more may follow, "0; ieof" when the
// preview was the whole body. Incremental: bytes go in as they arrive. Pure; no sockets.
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pss::icap {

class ChunkedDecoder {
public:
  struct Limits {
    std::size_t line = 1024;          // a chunk-size line, extensions included; a trailer line
    std::uint64_t chunk = 1ull << 40; // one chunk's size
    std::size_t trailers = 16 * 1024; // all trailer lines together
  };
  ChunkedDecoder() = default;
  explicit ChunkedDecoder(Limits limits) : m_limits(limits) {}

  // Consumes what it can of `in`, appending the body bytes to `out`; returns how many bytes of
  // `in` it used (less than all only once done(): what follows belongs to the next message).
  // Errors name the fault ("chunk size 'zz' is not hexadecimal").
  Result<std::size_t> feed(std::string_view in, std::string& out);
  // The last chunk and its trailers were read.
  bool done() const { return m_state == State::done; }
  // The last chunk said "ieof": nothing follows a preview.
  bool ieof() const { return m_ieof; }
  // Body bytes decoded since construction or reset().
  std::uint64_t total() const { return m_total; }
  // Ready for a new chunked body (the rest after a preview's "100 Continue").
  void reset();

private:
  enum class State { size_line, data, data_end, trailer, done };
  Result<void> size_line(std::string_view line);
  Limits m_limits;
  State m_state = State::size_line;
  std::string m_line; // the line being read (size line, data's CRLF, trailer)
  std::uint64_t m_left = 0;
  std::size_t m_trailer_bytes = 0;
  std::uint64_t m_total = 0;
  bool m_ieof = false;
};

// Appends `data` as one chunk (nothing for empty data: an empty chunk would end the body).
void write_chunk(std::string& out, std::string_view data);
// Appends the last chunk: "0\r\n\r\n", or "0; ieof\r\n\r\n".
void write_last_chunk(std::string& out, bool ieof = false);

} // namespace pss::icap

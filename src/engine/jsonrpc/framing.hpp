// JSON-RPC message framing on a byte stream, both ways: one message per line, or LSP-style
// "Content-Length: N\r\n\r\n" headers. Vendor servers answer in their code page (CP1252,
// UTF-16LE), so the decoder turns each message into UTF-8 before it is parsed. Pure.
#pragma once

#include "util/error.hpp"
#include "util/text.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pss::engine::jsonrpc {

enum class Framing { line, content_length };

// "line" or "content-length"; Error naming the accepted values otherwise.
Result<Framing> parse_framing(std::string_view name);

// One outgoing message on the wire. Requests are ASCII JSON (non-ASCII as \u escapes) in
// ASCII framing, which every code page reads the same; the encoding is the replies'.
std::string frame(std::string_view ascii_json, Framing framing);

class Decoder {
public:
  Decoder(Framing framing, text::Encoding encoding, std::size_t max_message = 16 << 20)
      : m_framing(framing), m_encoding(encoding), m_max(max_message) {}

  void feed(std::string_view bytes) { m_buf.append(bytes); }
  // The next complete message as UTF-8 (empty lines skipped), nullopt if more bytes are
  // needed, or Error when the stream is broken (a bad header, a message over the limit): the
  // connection must then be dropped.
  Result<std::optional<std::string>> next();
  std::size_t buffered() const { return m_buf.size(); }

private:
  Result<std::optional<std::string>> next_line();
  Result<std::optional<std::string>> next_content_length();

  Framing m_framing;
  text::Encoding m_encoding;
  std::size_t m_max;
  std::string m_buf;
};

} // namespace pss::engine::jsonrpc

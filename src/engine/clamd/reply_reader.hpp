// Assembles clamd's reply from the bytes it sends back, however the reads split them. Pure:
// the client feeds it what each read returned; tested and fuzzed without sockets.
//
// A reply ends at the first NUL or newline (z-framing; clamd ends some lines with '\n'
// anyway); what follows is ignored, a second reply included. A reply that runs past
// k_max_reply bytes without a terminator is an error, and no more than that is kept.
#pragma once

#include "engine/clamd/outcome.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pss::engine::clamd {

class ReplyReader {
public:
  static constexpr std::size_t k_max_reply = 64 * 1024;

  // Takes the next bytes received; true once the reply is complete (terminated, or too long).
  // Bytes fed after that are ignored.
  bool feed(std::string_view bytes);
  bool complete() const { return m_state != State::reading; }
  // The reply so far, terminator removed; never longer than k_max_reply.
  const std::string& text() const { return m_text; }

  // What the bytes came to. Once complete: the parsed reply, or an error for a reply that is
  // empty or too long. Before that the connection ended: if clamd closed it (`clean_eof`)
  // after a reply without a terminator, that reply; otherwise (nothing received, a reset, a
  // timeout) nullopt, and the caller says how the connection failed.
  std::optional<Outcome> outcome(bool clean_eof) const;

private:
  enum class State { reading, terminated, too_long };
  State m_state = State::reading;
  std::string m_text;
};

} // namespace pss::engine::clamd

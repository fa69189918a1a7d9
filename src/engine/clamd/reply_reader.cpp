#include "engine/clamd/reply_reader.hpp"

namespace pss::engine::clamd {

namespace {

Outcome error_outcome(std::string message) {
  Outcome o;
  o.error = std::move(message);
  return o;
}

} // namespace

bool ReplyReader::feed(std::string_view bytes) {
  if (complete()) {
    return true;
  }
  auto end = bytes.find_first_of(std::string_view("\0\n", 2));
  std::string_view line = bytes.substr(0, end);
  // One byte over the limit is enough to know the reply is too long.
  std::size_t room = k_max_reply + 1 - m_text.size();
  if (line.size() >= room) {
    m_text.append(line.substr(0, room - 1));
    m_state = State::too_long;
    return true;
  }
  m_text.append(line);
  if (end != std::string_view::npos) {
    m_state = State::terminated;
  }
  return complete();
}

std::optional<Outcome> ReplyReader::outcome(bool clean_eof) const {
  if (m_state == State::too_long) {
    return error_outcome("clamd sent a reply over " + std::to_string(k_max_reply) +
                         " bytes without a terminator");
  }
  if (m_state == State::reading && (!clean_eof || m_text.empty())) {
    return std::nullopt;
  }
  if (m_text.empty()) {
    return error_outcome("clamd sent an empty reply");
  }
  Outcome o;
  o.reply = parse_reply(m_text);
  return o;
}

} // namespace pss::engine::clamd

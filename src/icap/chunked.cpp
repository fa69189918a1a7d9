#include "icap/chunked.hpp"

#include <algorithm>
#include <cstdio>

namespace pss::icap {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

} // namespace

void ChunkedDecoder::reset() {
  m_state = State::size_line;
  m_line.clear();
  m_left = 0;
  m_trailer_bytes = 0;
  m_total = 0;
  m_ieof = false;
}

Result<void> ChunkedDecoder::size_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  const auto semi = line.find(';');
  const std::string_view digits = trim(line.substr(0, semi));
  if (digits.empty()) {
    return make_error("a chunk without its size ('" + shown(line) + "')");
  }
  std::uint64_t size = 0;
  for (char c : digits) {
    const int v = hex_value(c);
    if (v < 0) {
      return make_error("chunk size '" + shown(digits) + "' is not hexadecimal");
    }
    if (size > (m_limits.chunk >> 4)) {
      return make_error("a chunk larger than " + std::to_string(m_limits.chunk) + " bytes");
    }
    size = size * 16 + static_cast<unsigned>(v);
  }
  if (size > m_limits.chunk) {
    return make_error("a chunk larger than " + std::to_string(m_limits.chunk) + " bytes");
  }
  if (size == 0) {
    // Extensions: "; ieof" (RFC 3507 §4.5) is the one that matters; others are ignored.
    std::string_view ext = semi == std::string_view::npos ? "" : line.substr(semi + 1);
    while (!ext.empty()) {
      const auto next = ext.find(';');
      const auto name = trim(ext.substr(0, std::min(next, ext.find('='))));
      if (name == "ieof") {
        m_ieof = true;
      }
      ext = next == std::string_view::npos ? "" : ext.substr(next + 1);
    }
    m_state = State::trailer;
    return {};
  }
  m_left = size;
  m_state = State::data;
  return {};
}

Result<std::size_t> ChunkedDecoder::feed(std::string_view in, std::string& out) {
  std::size_t used = 0;
  while (used < in.size() && m_state != State::done) {
    const std::string_view rest = in.substr(used);
    switch (m_state) {
    case State::size_line:
    case State::trailer: {
      const auto nl = rest.find('\n');
      const std::size_t take = nl == std::string_view::npos ? rest.size() : nl + 1;
      if (m_state == State::size_line && m_line.size() + take > m_limits.line + 2) {
        return make_error("a chunk-size line is longer than " + std::to_string(m_limits.line) +
                          " bytes");
      }
      if (m_state == State::trailer && m_trailer_bytes + m_line.size() + take > m_limits.trailers) {
        return make_error("the trailers are longer than " + std::to_string(m_limits.trailers) +
                          " bytes");
      }
      m_line.append(rest.substr(0, take));
      used += take;
      if (nl == std::string_view::npos) {
        break;
      }
      std::string_view line(m_line);
      line.remove_suffix(1); // '\n'
      if (m_state == State::size_line) {
        PSS_TRY_VOID(size_line(line));
      } else if (line.empty() || line == "\r") {
        m_state = State::done;
      } else {
        m_trailer_bytes += m_line.size();
      }
      m_line.clear();
      break;
    }
    case State::data: {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(m_left, rest.size()));
      out.append(rest.substr(0, n));
      used += n;
      m_left -= n;
      m_total += n;
      if (m_left == 0) {
        m_state = State::data_end;
      }
      break;
    }
    case State::data_end: {
      // CRLF after the data; a bare LF is accepted.
      const char c = rest.front();
      ++used;
      if (c == '\r' && m_line.empty()) {
        m_line = "\r";
      } else if (c == '\n') {
        m_line.clear();
        m_state = State::size_line;
      } else {
        return make_error("a chunk's data is longer than its size says");
      }
      break;
    }
    case State::done:
      break;
    }
  }
  return used;
}

void write_chunk(std::string& out, std::string_view data) {
  if (data.empty()) {
    return;
  }
  char size[20];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  out.append(size, static_cast<std::size_t>(n));
  out.append(data);
  out.append("\r\n");
}

void write_last_chunk(std::string& out, bool ieof) {
  out.append(ieof ? "0; ieof\r\n\r\n" : "0\r\n\r\n");
}

} // namespace pss::icap

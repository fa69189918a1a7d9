#include "engine/jsonrpc/framing.hpp"

#include <charconv>

namespace pss::engine::jsonrpc {

namespace {

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

} // namespace

Result<Framing> parse_framing(std::string_view name) {
  if (name == "line") {
    return Framing::line;
  }
  if (name == "content-length") {
    return Framing::content_length;
  }
  return make_error("framing must be \"line\" or \"content-length\", not \"" + std::string(name) +
                    "\"");
}

std::string frame(std::string_view ascii_json, Framing framing) {
  if (framing == Framing::line) {
    std::string line(ascii_json);
    line.push_back('\n');
    return line;
  }
  return "Content-Length: " + std::to_string(ascii_json.size()) + "\r\n\r\n" +
         std::string(ascii_json);
}

Result<std::optional<std::string>> Decoder::next() {
  return m_framing == Framing::line ? next_line() : next_content_length();
}

Result<std::optional<std::string>> Decoder::next_line() {
  for (;;) {
    std::size_t end = std::string::npos;
    std::size_t width = 1;
    if (m_encoding == text::Encoding::utf16le) {
      width = 2; // the UTF-16LE newline 0A 00, on a code-unit boundary
      for (std::size_t i = 0; i + 1 < m_buf.size(); i += 2) {
        if (m_buf[i] == '\n' && m_buf[i + 1] == '\0') {
          end = i;
          break;
        }
      }
    } else {
      end = m_buf.find('\n');
    }
    if (end == std::string::npos) {
      if (m_buf.size() > m_max) {
        return make_error("a message longer than " + std::to_string(m_max) + " bytes");
      }
      return std::optional<std::string>{};
    }
    std::string msg = text::decode(std::string_view(m_buf).substr(0, end), m_encoding);
    m_buf.erase(0, end + width);
    while (!msg.empty() && (msg.back() == '\r' || msg.back() == ' ')) {
      msg.pop_back();
    }
    if (!msg.empty()) {
      return std::optional<std::string>(std::move(msg));
    }
  }
}

Result<std::optional<std::string>> Decoder::next_content_length() {
  // Headers are ASCII in every encoding; the length counts body bytes.
  auto header_end = m_buf.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (m_buf.size() > 8192) {
      return make_error("no end of headers within 8192 bytes");
    }
    return std::optional<std::string>{};
  }
  std::optional<std::size_t> length;
  std::string_view headers = std::string_view(m_buf).substr(0, header_end);
  while (!headers.empty()) {
    auto eol = headers.find("\r\n");
    std::string_view line = headers.substr(0, eol);
    headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      return make_error("a header line without ':'");
    }
    if (ascii_iequals(trim(line.substr(0, colon)), "content-length")) {
      auto v = trim(line.substr(colon + 1));
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || p != v.data() + v.size()) {
        return make_error("a bad Content-Length: \"" + std::string(v) + "\"");
      }
      length = n;
    }
  }
  if (!length) {
    return make_error("a message without Content-Length");
  }
  if (*length > m_max) {
    return make_error("a message of " + std::to_string(*length) + " bytes, over the limit of " +
                      std::to_string(m_max));
  }
  std::size_t start = header_end + 4;
  if (m_buf.size() - start < *length) {
    return std::optional<std::string>{};
  }
  std::string msg = text::decode(std::string_view(m_buf).substr(start, *length), m_encoding);
  m_buf.erase(0, start + *length);
  return std::optional<std::string>(std::move(msg));
}

} // namespace pss::engine::jsonrpc

#include "icap/response_reader.hpp"

#include <algorithm>
#include <charconv>

namespace pss::icap {

Result<std::pair<int, std::string>> parse_http_status_line(std::string_view line) {
  // "HTTP/1.1 200 OK"; the reason may be empty.
  const auto sp = line.find(' ');
  int status = 0;
  if (line.rfind("HTTP/", 0) != 0 || sp == std::string_view::npos || line.size() < sp + 4) {
    return make_error("not an HTTP status line");
  }
  const auto code = line.substr(sp + 1, 3);
  auto [p, ec] = std::from_chars(code.data(), code.data() + 3, status);
  if (ec != std::errc() || p != code.data() + 3 || status < 100 || status > 599 ||
      (line.size() > sp + 4 && line[sp + 4] != ' ')) {
    return make_error("an HTTP status line without a 3-digit status");
  }
  std::string reason = line.size() > sp + 5 ? std::string(line.substr(sp + 5)) : "";
  return std::pair{status, std::move(reason)};
}

namespace {

Error bad(const std::string& part, const Error& e) {
  return make_error("the answer's " + part + ": " + e.message);
}

bool is_token(std::string_view s) {
  return !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789!#$%&'*+-.^_`|~") == std::string_view::npos;
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

// An encapsulated HTTP head is the server's rewrite of a message, and only read for its status
// and a few fields: a line that is not a field (Sophos SAVDI repeats its status line there) is
// skipped rather than failing the whole answer. Bounded: the heads' size is.
HttpHead lenient_http_head(std::string_view text) {
  HttpHead out;
  bool first = true;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? "" : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (first) {
      out.start_line = std::string(line);
      first = false;
      continue;
    }
    if (line.empty()) {
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (!out.fields.all().empty()) {
        out.fields.continue_last(trim(line));
      }
      continue;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos && is_token(line.substr(0, colon))) {
      out.fields.add(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
    }
  }
  return out;
}

} // namespace

Result<bool> ResponseReader::head_done(std::string_view text) {
  auto head = parse_head(text, m_limits.head);
  if (!head) {
    return bad("ICAP head", head.error());
  }
  auto status = parse_status_line(head->start_line);
  if (!status) {
    return bad("status line", status.error());
  }
  if (status->status == 100) {
    return true; // its fields (there are none in practice) say nothing we need
  }
  if (status->status < 200) {
    return make_error("the answer's status " + std::to_string(status->status) +
                      " is interim, and not 100 Continue");
  }
  m_response.status = std::move(*status);
  m_response.fields = std::move(head->fields);
  const std::string* enc = m_response.fields.find("Encapsulated");
  if (enc == nullptr) {
    m_state = State::done;
    return false;
  }
  auto parsed = parse_encapsulated(*enc, m_limits.heads);
  if (!parsed) {
    return bad("Encapsulated field", parsed.error());
  }
  m_response.encapsulated = *parsed;
  if (parsed->body_offset > 0) {
    m_state = State::http_heads;
  } else {
    m_state = parsed->has_body() ? State::body : State::done;
  }
  return false;
}

Result<void> ResponseReader::heads_done() {
  const Encapsulated& e = *m_response.encapsulated;
  auto one = [&](std::size_t offset, std::size_t size, const char* what) -> Result<HttpHead> {
    std::string_view text = std::string_view(m_buf).substr(offset, size);
    if (text.empty() || text.front() == '\r' || text.front() == '\n') {
      return bad(std::string("encapsulated ") + what, make_error("it has no start line"));
    }
    return lenient_http_head(text);
  };
  if (e.req_hdr) {
    m_response.req_head = PSS_TRY(one(*e.req_hdr, e.req_hdr_size(), "HTTP request head"));
  }
  if (e.res_hdr) {
    HttpHead res = PSS_TRY(one(*e.res_hdr, e.res_hdr_size(), "HTTP response head"));
    auto status = parse_http_status_line(res.start_line);
    if (!status) {
      return bad("encapsulated HTTP response head", status.error());
    }
    res.status = status->first;
    res.reason = std::move(status->second);
    m_response.res_head = std::move(res);
  }
  m_buf.clear();
  m_state = e.has_body() ? State::body : State::done;
  return {};
}

Result<ResponseReader::Progress> ResponseReader::feed(std::string_view in) {
  Progress p;
  while (p.used < in.size()) {
    const std::string_view rest = in.substr(p.used);
    switch (m_state) {
    case State::icap_head: {
      m_started = true;
      const std::size_t before = m_buf.size();
      m_buf.append(rest);
      auto end = find_head_end(m_buf, m_limits.head);
      if (!end) {
        return bad("ICAP head", end.error());
      }
      if (!*end) {
        p.used = in.size();
        break;
      }
      p.used += **end - before;
      m_buf.resize(**end);
      const bool continue_100 = PSS_TRY(head_done(m_buf));
      m_buf.clear();
      if (continue_100) {
        p.event = Event::continue_100;
        return p;
      }
      if (m_state == State::done) {
        p.event = Event::response;
        return p;
      }
      break;
    }
    case State::http_heads: {
      const std::size_t total = m_response.encapsulated->body_offset;
      const std::size_t take = std::min(total - m_buf.size(), rest.size());
      m_buf.append(rest.substr(0, take));
      p.used += take;
      if (m_buf.size() == total) {
        PSS_TRY_VOID(heads_done());
        if (m_state == State::done) {
          p.event = Event::response;
          return p;
        }
      }
      break;
    }
    case State::body: {
      m_scratch.clear();
      auto n = m_chunks.feed(rest, m_scratch);
      if (!n) {
        return bad("body", n.error());
      }
      p.used += *n;
      const std::size_t room = m_limits.body_prefix - m_response.body_prefix.size();
      m_response.body_prefix.append(m_scratch, 0, std::min(room, m_scratch.size()));
      m_response.body_size += m_scratch.size();
      if (m_chunks.done()) {
        m_state = State::done;
        p.event = Event::response;
        return p;
      }
      break;
    }
    case State::done:
      return make_error("bytes after the answer, before any request");
    }
  }
  return p;
}

std::string ResponseReader::where() const {
  switch (m_state) {
  case State::icap_head:
    return m_buf.empty() ? (m_started ? "after 100 Continue, before the final answer"
                                      : "before any byte of an answer")
                         : "in the ICAP head";
  case State::http_heads:
    return "in the encapsulated HTTP heads";
  case State::body:
    return "in the body after " + std::to_string(m_response.body_size) + " bytes";
  case State::done:
    break;
  }
  return "after the answer";
}

} // namespace pss::icap

#include "icap/request_reader.hpp"

#include "util/error.hpp"

#include <algorithm>
#include <charconv>

namespace pss::icap {

namespace {

RequestError bad(std::string message, int status = 400) {
  return RequestError{status, std::move(message)};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Whether the comma-separated list `value` holds `token` (case-insensitive).
bool list_has(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) {
      return true;
    }
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
  }
  return false;
}

// An encapsulated HTTP head must end exactly where the next Encapsulated entry starts.
ReadResult<Head> http_head(std::string_view bytes, std::string_view what,
                           const HeadLimits& limits) {
  if (bytes.front() == '\n' || bytes.starts_with("\r\n")) {
    return bad("the encapsulated " + std::string(what) + " head starts with an empty line");
  }
  auto end = find_head_end(bytes, limits);
  if (!end) {
    return bad("the encapsulated " + std::string(what) + " head: " + end.error().message, 413);
  }
  if (!*end || **end != bytes.size()) {
    return bad("the encapsulated " + std::string(what) + " head does not end where the " +
               "Encapsulated offsets say (" +
               (*end ? "it ends after " + std::to_string(**end) + " bytes"
                     : "no empty line in its " + std::to_string(bytes.size()) + " bytes") +
               ")");
  }
  auto head = parse_head(bytes, limits);
  if (!head) {
    return bad("the encapsulated " + std::string(what) + " head: " + head.error().message);
  }
  return std::move(*head);
}

} // namespace

void throw_exception_from_error(const RequestError& e, const boost::source_location& loc) {
  (void)loc;
  throw Fatal("ICAP " + std::to_string(e.status) + ": " + e.message);
}

ReadResult<RequestReader::Progress> RequestReader::feed(std::string_view in, std::string& body) {
  switch (m_state) {
  case State::icap_head: {
    auto used = read_icap_head(in);
    if (!used) {
      return used.error();
    }
    if (m_state == State::icap_head) {
      return Progress{Event::more, *used};
    }
    if (m_state != State::http_heads) { // no encapsulated heads: the head is all there is
      return Progress{Event::head, *used};
    }
    // The heads may have arrived with the ICAP head.
    auto more = feed(in.substr(*used), body);
    if (!more) {
      return more.error();
    }
    return Progress{more->event, *used + more->used};
  }
  case State::http_heads: {
    const std::size_t need = m_request.encapsulated.body_offset - m_head.size();
    const std::size_t take = std::min(need, in.size());
    m_head.append(in.substr(0, take));
    if (m_head.size() < m_request.encapsulated.body_offset) {
      return Progress{Event::more, take};
    }
    auto done = http_heads_done();
    if (!done) {
      return done.error();
    }
    return Progress{Event::head, take};
  }
  case State::body:
    return read_body(in, body);
  case State::preview_end:
    return Progress{Event::preview_end, 0};
  case State::done:
    break;
  }
  return Progress{Event::complete, 0};
}

ReadResult<std::size_t> RequestReader::read_icap_head(std::string_view in) {
  const HeadLimits& limits = m_limits.head;
  std::size_t used = 0;
  while (used < in.size()) {
    m_started = true;
    const std::string_view rest = in.substr(used);
    const auto nl = rest.find('\n');
    const std::size_t take = nl == std::string_view::npos ? rest.size() : nl + 1;
    // The line so far, without its '\n' ('\r' counted, as find_head_end does).
    const std::size_t line =
        m_head.size() - m_line_start + (nl == std::string_view::npos ? take : nl);
    if (line > limits.line) {
      return bad(std::string(m_line_start == 0 ? "the request line" : "a line of the ICAP head") +
                     " is longer than " + std::to_string(limits.line) + " bytes",
                 413);
    }
    if (m_head.size() + take > limits.head) {
      return bad("the ICAP head is longer than " + std::to_string(limits.head) + " bytes", 413);
    }
    m_head.append(rest.substr(0, take));
    used += take;
    if (nl == std::string_view::npos) {
      break;
    }
    const std::size_t length = m_head.size() - 1 - m_line_start;
    const bool empty = length == 0 || (length == 1 && m_head[m_line_start] == '\r');
    if (empty) {
      if (m_line_start == 0) {
        return bad("the request starts with an empty line");
      }
      auto done = icap_head_done();
      if (!done) {
        return done.error();
      }
      return used;
    }
    if (m_line_start != 0 && m_head[m_line_start] != ' ' && m_head[m_line_start] != '\t') {
      // A field (not a continuation): counted here, so that too many is a 413, not a 400.
      if (++m_fields > limits.fields) {
        return bad("more than " + std::to_string(limits.fields) + " fields in the ICAP head", 413);
      }
    }
    m_line_start = m_head.size();
  }
  return used;
}

ReadResult<void> RequestReader::icap_head_done() {
  auto head = parse_head(m_head, m_limits.head);
  if (!head) {
    return bad("the ICAP head: " + head.error().message);
  }
  auto line = parse_request_line(head->start_line);
  if (!line) {
    return bad(line.error().message);
  }
  Request& r = m_request;
  r.line = std::move(*line);
  r.fields = std::move(head->fields);
  if (r.line.version != "ICAP/1.0") {
    return bad("ICAP version '" + r.line.version.substr(0, 20) + "' is not supported (ICAP/1.0)",
               505);
  }
  const std::string& m = r.line.method;
  if (m != "OPTIONS" && m != "REQMOD" && m != "RESPMOD") {
    return bad("method '" + m.substr(0, 20) + "' is not implemented (OPTIONS, REQMOD, RESPMOD)",
               501);
  }
  auto url = parse_url(r.line.uri);
  if (!url) {
    return bad(url.error().message);
  }
  r.url = std::move(*url);

  const auto encapsulated = r.fields.find_all("Encapsulated");
  if (encapsulated.size() > 1) {
    return bad("more than one Encapsulated field");
  }
  if (encapsulated.empty()) {
    if (m != "OPTIONS") { // RFC 3507 §4.4.1: every request has one (clients omit it in OPTIONS)
      return bad("a " + m + " without an Encapsulated field");
    }
  } else {
    auto e = parse_encapsulated(encapsulated.front(), static_cast<std::size_t>(-1));
    if (!e) {
      return bad(e.error().message);
    }
    if (e->body_offset > m_limits.heads) {
      return bad("the encapsulated HTTP heads are longer than " + std::to_string(m_limits.heads) +
                     " bytes (Encapsulated: " + encapsulated.front().substr(0, 80) + ")",
                 413);
    }
    r.encapsulated = *e;
  }
  using Body = Encapsulated::Body;
  const Encapsulated& e = r.encapsulated;
  const auto refuse = [&](std::string_view what) {
    return bad("a " + m + " with " + std::string(what) + " (Encapsulated: " +
               (encapsulated.empty() ? std::string() : encapsulated.front().substr(0, 80)) + ")");
  };
  if (m == "OPTIONS" &&
      (e.req_hdr || e.res_hdr || e.body == Body::req_body || e.body == Body::res_body)) {
    return refuse("encapsulated HTTP heads or an HTTP body");
  }
  if (m == "REQMOD" && (e.res_hdr || e.body == Body::res_body || e.body == Body::opt_body)) {
    return refuse("a response head or a body other than req-body");
  }
  if (m == "RESPMOD" && (e.body == Body::req_body || e.body == Body::opt_body)) {
    return refuse("a body other than res-body");
  }
  if (const std::string* p = r.fields.find("Preview"); p != nullptr && e.has_body()) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(p->data(), p->data() + p->size(), n);
    if (p->empty() || ec != std::errc() || end != p->data() + p->size()) {
      return bad("Preview '" + p->substr(0, 40) + "' is not a number of bytes");
    }
    r.preview = n;
  }
  for (const auto& v : r.fields.find_all("Allow")) {
    r.allow_204 = r.allow_204 || list_has(v, "204");
  }
  for (const auto& v : r.fields.find_all("Connection")) {
    r.keep_alive = r.keep_alive && !list_has(v, "close");
  }
  m_head.clear();
  m_head.shrink_to_fit();
  if (e.body_offset > 0) {
    m_state = State::http_heads;
  } else {
    m_state = e.has_body() ? State::body : State::done;
  }
  return {};
}

ReadResult<void> RequestReader::http_heads_done() {
  Request& r = m_request;
  const Encapsulated& e = r.encapsulated;
  const std::string_view all = m_head;
  if (e.req_hdr) {
    std::string_view bytes = all.substr(*e.req_hdr, e.req_hdr_size());
    auto h = http_head(bytes, "HTTP request", m_limits.http_head);
    if (!h) {
      return h.error();
    }
    r.req_hdr = std::string(bytes);
    r.req_head = std::move(*h);
  }
  if (e.res_hdr) {
    std::string_view bytes = all.substr(*e.res_hdr, e.res_hdr_size());
    auto h = http_head(bytes, "HTTP response", m_limits.http_head);
    if (!h) {
      return h.error();
    }
    r.res_hdr = std::string(bytes);
    r.res_head = std::move(*h);
  }
  m_head.clear();
  m_head.shrink_to_fit();
  m_state = e.has_body() ? State::body : State::done;
  return {};
}

ReadResult<RequestReader::Progress> RequestReader::read_body(std::string_view in,
                                                             std::string& body) {
  auto used = m_chunks.feed(in, body);
  if (!used) {
    return bad("the body: " + used.error().message);
  }
  if (in_preview() && m_chunks.total() > *m_request.preview) {
    return bad("the preview is longer than the " + std::to_string(*m_request.preview) +
               " bytes its Preview field announced");
  }
  if (!m_chunks.done()) {
    return Progress{Event::more, *used};
  }
  if (in_preview() && !m_chunks.ieof()) {
    m_state = State::preview_end;
    return Progress{Event::preview_end, *used};
  }
  m_state = State::done;
  return Progress{Event::complete, *used};
}

void RequestReader::continue_after_preview() {
  if (m_state != State::preview_end) {
    return;
  }
  m_body_before += m_chunks.total();
  m_chunks.reset();
  m_continued = true;
  m_state = State::body;
}

std::optional<RequestError> RequestReader::at_eof() const {
  if (!m_started || m_state == State::done) {
    return std::nullopt;
  }
  return bad("the connection closed " + where());
}

std::string RequestReader::where() const {
  switch (m_state) {
  case State::icap_head:
    return "in the ICAP head";
  case State::http_heads:
    return "in the encapsulated HTTP heads (" + std::to_string(m_head.size()) + " of " +
           std::to_string(m_request.encapsulated.body_offset) + " bytes)";
  case State::body:
    return "in the body after " + std::to_string(body_size()) + " bytes";
  case State::preview_end:
    return "after the preview (" + std::to_string(body_size()) + " bytes)";
  case State::done:
    break;
  }
  return "after the message";
}

} // namespace pss::icap

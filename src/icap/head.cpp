#include "icap/head.hpp"

#include <algorithm>
#include <charconv>

namespace pss::icap {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
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

// RFC 7230 tchar: what a field name may hold.
bool is_token_char(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// For errors: a bounded, printable copy of what the peer sent.
std::string quote(std::string_view s) {
  constexpr std::size_t k_max = 60;
  std::string out = "'";
  for (char c : s.substr(0, k_max)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  out += s.size() > k_max ? "...'" : "'";
  return out;
}

} // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

void Fields::add(std::string name, std::string value) {
  m_fields.emplace_back(std::move(name), std::move(value));
}

const std::string* Fields::find(std::string_view name) const {
  for (const auto& [n, v] : m_fields) {
    if (iequals(n, name)) {
      return &v;
    }
  }
  return nullptr;
}

std::vector<std::string> Fields::find_all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : m_fields) {
    if (iequals(n, name)) {
      out.push_back(v);
    }
  }
  return out;
}

std::string Fields::write() const {
  std::string out;
  for (const auto& [n, v] : m_fields) {
    out += n;
    out += ": ";
    for (char c : v) {
      if (c == '\n') {
        out += "\r\n\t";
      } else {
        out += c;
      }
    }
    out += "\r\n";
  }
  return out;
}

Result<std::optional<std::size_t>> find_head_end(std::string_view data, const HeadLimits& limits) {
  std::size_t start = 0;
  for (;;) {
    const auto nl = data.find('\n', start);
    const std::size_t line_end = nl == std::string_view::npos ? data.size() : nl;
    if (line_end - start > limits.line) {
      return make_error("a header line is longer than " + std::to_string(limits.line) + " bytes");
    }
    if (nl == std::string_view::npos) {
      if (data.size() > limits.head) {
        return make_error("the head is longer than " + std::to_string(limits.head) + " bytes");
      }
      return std::optional<std::size_t>{};
    }
    if (nl + 1 > limits.head) {
      return make_error("the head is longer than " + std::to_string(limits.head) + " bytes");
    }
    const std::string_view line = data.substr(start, nl - start);
    if (line.empty() || line == "\r") {
      if (start == 0) {
        return make_error("the message starts with an empty line");
      }
      return std::optional<std::size_t>(nl + 1);
    }
    start = nl + 1;
  }
}

Result<Head> parse_head(std::string_view head, const HeadLimits& limits) {
  Head out;
  bool first = true;
  std::size_t start = 0;
  std::size_t fields = 0;
  while (start < head.size()) {
    auto nl = head.find('\n', start);
    if (nl == std::string_view::npos) {
      return make_error("the head does not end with an empty line");
    }
    std::string_view line = head.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.size() > limits.line) {
      return make_error("a header line is longer than " + std::to_string(limits.line) + " bytes");
    }
    if (first) {
      if (line.empty()) {
        return make_error("the message starts with an empty line");
      }
      out.start_line = std::string(line);
      first = false;
      continue;
    }
    if (line.empty()) {
      if (start != head.size()) {
        return make_error("bytes after the head's empty line");
      }
      return out;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      // A continuation of the previous field (obsolete folding, still sent by c-icap).
      if (out.fields.all().empty()) {
        return make_error("a continuation line before any field: " + quote(line));
      }
      out.fields.continue_last(trim(line)); // bounded: the whole head is
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return make_error("a header line without a name and ':': " + quote(line));
    }
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char)) {
      return make_error("a header name with a character a name may not hold: " + quote(name));
    }
    if (++fields > limits.fields) {
      return make_error("more than " + std::to_string(limits.fields) + " header fields");
    }
    out.fields.add(std::string(name), std::string(trim(line.substr(colon + 1))));
  }
  return make_error("the head does not end with an empty line");
}

Result<RequestLine> parse_request_line(std::string_view line) {
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
      sp1 == 0 || sp2 == sp1 + 1 || sp2 + 1 == line.size()) {
    return make_error("the request line is not 'METHOD URI ICAP/1.0': " + quote(line));
  }
  RequestLine out{std::string(line.substr(0, sp1)),
                  std::string(line.substr(sp1 + 1, sp2 - sp1 - 1)),
                  std::string(line.substr(sp2 + 1))};
  if (!std::all_of(out.method.begin(), out.method.end(), is_token_char)) {
    return make_error("the method is not a token: " + quote(out.method));
  }
  if (out.version.rfind("ICAP/", 0) != 0) {
    return make_error("the request line does not end in ICAP/1.0: " + quote(line));
  }
  return out;
}

Result<StatusLine> parse_status_line(std::string_view line) {
  // "ICAP/1.0 200 OK"; the reason may be empty or hold spaces.
  const auto sp1 = line.find(' ');
  if (line.rfind("ICAP/", 0) != 0 || sp1 == std::string_view::npos || line.size() < sp1 + 4) {
    return make_error("the status line is not 'ICAP/1.0 NNN reason': " + quote(line));
  }
  StatusLine out;
  out.version = std::string(line.substr(0, sp1));
  const auto code = line.substr(sp1 + 1, 3);
  auto [p, ec] = std::from_chars(code.data(), code.data() + code.size(), out.status);
  if (ec != std::errc() || p != code.data() + 3 || out.status < 100 || out.status > 599 ||
      (line.size() > sp1 + 4 && line[sp1 + 4] != ' ')) {
    return make_error("the status line has no 3-digit status: " + quote(line));
  }
  out.reason = line.size() > sp1 + 5 ? std::string(line.substr(sp1 + 5)) : "";
  return out;
}

std::string Url::text() const {
  std::string out = "icap://" + host + ":" + std::to_string(port) + "/" + service;
  if (!args.empty()) {
    out += "?" + args;
  }
  return out;
}

Result<Url> parse_url(std::string_view url) {
  auto bad = [&](const std::string& what) {
    return make_error("ICAP URL " + quote(url) + ": " + what);
  };
  constexpr std::string_view k_scheme = "icap://";
  if (url.size() < k_scheme.size() || !iequals(url.substr(0, k_scheme.size()), k_scheme)) {
    return bad("does not start with icap://");
  }
  std::string_view rest = url.substr(k_scheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  Url out;
  if (authority.find('@') != std::string_view::npos) {
    return bad("user information is not supported");
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return bad("an IPv6 address without its ']'");
    }
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      return bad("bytes after the IPv6 address");
    }
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? "" : authority.substr(colon);
  }
  if (host.empty()) {
    return bad("no host");
  }
  if (!authority.empty()) { // ":port"
    const auto digits = authority.substr(1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || port == 0 ||
        port > 65535) {
      return bad("the port is not a number from 1 to 65535");
    }
    out.port = static_cast<unsigned short>(port);
  }
  out.host = std::string(host);
  const auto q = path.find('?');
  out.service = std::string(path.substr(0, q));
  if (q != std::string_view::npos) {
    out.args = std::string(path.substr(q + 1));
  }
  if (out.service.empty()) {
    return bad("no service path (icap://host:port/SERVICE)");
  }
  return out;
}

} // namespace pss::icap

// ICAP message heads (RFC 3507 §4.3): the start line and the header fields, read whole before
// anything is decided, within limits a peer cannot push us past. Pure; no sockets.
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pss::icap {

struct HeadLimits {
  std::size_t line = 8 * 1024;  // one line (a folded field counts each of its lines)
  std::size_t head = 64 * 1024; // the whole head, empty line included
  std::size_t fields = 100;
};

// Header fields in arrival order; names compared ASCII case-insensitively. A field folded over
// several lines keeps them as one value joined by "\n", each line trimmed: c-icap's
// X-Violations-Found lists file, threat, resolution and type that way.
class Fields {
public:
  void add(std::string name, std::string value);
  // The first field of that name.
  const std::string* find(std::string_view name) const;
  std::vector<std::string> find_all(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return m_fields; }
  // Appends a continuation line to the last field's value ("\n" first). Needs a field.
  void continue_last(std::string_view line) { m_fields.back().second.append("\n").append(line); }
  // "Name: value\r\n" for each; a multi-line value is folded back ("\r\n\t" between lines).
  std::string write() const;

private:
  std::vector<std::pair<std::string, std::string>> m_fields;
};

struct Head {
  std::string start_line; // "RESPMOD icap://host/avscan ICAP/1.0" or "ICAP/1.0 200 OK"
  Fields fields;
};

// The size of the head at the start of `data`, through its empty line (CRLF; a bare LF is
// accepted too), or nullopt while it is incomplete. An Error when the limits are passed first.
Result<std::optional<std::size_t>> find_head_end(std::string_view data,
                                                 const HeadLimits& limits = {});

// Parses a complete head (as find_head_end measured it). Errors say what was wrong.
Result<Head> parse_head(std::string_view head, const HeadLimits& limits = {});

struct RequestLine {
  std::string method;  // OPTIONS, REQMOD, RESPMOD (as sent; the caller decides what it knows)
  std::string uri;     // icap://host[:port]/service[?args]
  std::string version; // ICAP/1.0
};
Result<RequestLine> parse_request_line(std::string_view line);

struct StatusLine {
  std::string version; // ICAP/1.0
  int status = 0;      // 100..599
  std::string reason;
};
Result<StatusLine> parse_status_line(std::string_view line);

// icap://host[:port]/service[?args] (an ICAP URL, RFC 3507 §4.2). `service` is the path
// without its leading '/', percent-decoding not applied.
struct Url {
  std::string host;
  unsigned short port = 1344; // RFC 3507's default
  std::string service;
  std::string args;         // after '?', without it
  std::string text() const; // back to icap://host:port/service[?args]
};
// The errors name the URL and what is wrong with it ("icap://h/x: no port after ':'").
Result<Url> parse_url(std::string_view url);

// ASCII case-insensitive equality (field names, methods).
bool iequals(std::string_view a, std::string_view b);

} // namespace pss::icap

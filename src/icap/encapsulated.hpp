// The Encapsulated field (RFC 3507 §4.4.1): where the encapsulated HTTP request and response
// heads start, and which kind of body follows them, as offsets into the message body.
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pss::icap {

struct Encapsulated {
  enum class Body { req_body, res_body, null_body, opt_body };
  std::optional<std::size_t> req_hdr; // offset of the HTTP request head
  std::optional<std::size_t> res_hdr; // offset of the HTTP response head
  Body body = Body::null_body;
  std::size_t body_offset = 0; // where the body starts: the size of the heads before it

  bool has_body() const { return body != Body::null_body; }
  // The size of each head (from its offset to the next entry); 0 when absent.
  std::size_t req_hdr_size() const;
  std::size_t res_hdr_size() const;
  // "req-hdr=0, res-hdr=137, res-body=296"
  std::string write() const;
};

// Entries in the RFC's order (req-hdr, res-hdr, then exactly one body entry, last), each at most
// once, the first at offset 0, offsets strictly increasing and at most `max_offset`. Errors
// quote the value.
Result<Encapsulated> parse_encapsulated(std::string_view value, std::size_t max_offset = 65536);

} // namespace pss::icap

// What an ICAP client sends (RFC 3507 §4.3.2, §4.5): an OPTIONS request, and the head of a
// RESPMOD carrying an artifact as the body of a synthetic HTTP exchange (a GET of
// /<sha256> answered 200 with the artifact's size), with Preview and Allow: 204 as the
// server's OPTIONS allow. The body itself is chunked by the caller (chunked.hpp). Pure.
#pragma once

#include "icap/head.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace pss::icap {

// The Host of the synthetic HTTP request: a reserved name (RFC 2606) that resolves nowhere,
// so that a server checking the URL's reputation learns nothing and reaches nothing.
inline constexpr std::string_view k_synthetic_host = "pssupervise.invalid";

// "OPTIONS icap://host:port/service ICAP/1.0" with Host and "Encapsulated: null-body=0".
std::string write_options(const Url& url);

struct RespmodHead {
  Url url;
  std::string sha256;     // names the synthetic request: GET /<sha256>
  std::uint64_t size = 0; // the artifact's size: the HTTP response's Content-Length
  bool allow_204 = false; // "Allow: 204": the server may answer 204 instead of echoing it
  std::optional<std::uint64_t> preview; // "Preview: N": the first N bytes go first
  Fields extra;                         // more ICAP fields (a manifest's), written as they are
};

// The ICAP head, then the encapsulated HTTP request and response heads, with the
// Encapsulated offsets computed; the chunked body follows it on the wire.
std::string write_respmod_head(const RespmodHead& r);

} // namespace pss::icap

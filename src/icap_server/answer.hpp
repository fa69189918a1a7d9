// What the ICAP server answers, without sockets: OPTIONS, errors, the ISTag, the engines'
// analyses made one verdict, and the answer to a REQMOD or RESPMOD for that verdict (204, the
// message unmodified, or an HTTP 403 page naming the threats, with c-icap's headers). The
// server only carries these out.
#pragma once

#include "backend/job.hpp"
#include "icap/request_reader.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pss::icap_server {

// The Preview we ask for in OPTIONS: a body up to this size comes whole with the request (one
// round trip), a larger one stops after it so that we see the HTTP heads (Content-Length)
// before the client sends the rest — a body over --body-limit is then refused unsent. Scanning
// needs the whole body, so a larger preview would only buffer more; c-icap asks for 1024 too.
inline constexpr std::uint64_t k_preview = 1024;

// "ICAP/1.0 204 No Content": the reason phrases of RFC 3507 §4.3.3.
std::string_view reason_phrase(int status);

// An engine's versions as an ISTag depends on them.
struct EngineVersion {
  std::string engine;
  std::string version;     // the engine's own; empty if unknown
  std::string definitions; // empty if unknown
};
// `"PSS-` and 20 hex digits of a SHA-256 over every engine's name and versions and `salt`, then
// `"` (26 bytes, within RFC 3507's 32): it changes when any engine's definitions change.
std::string make_istag(const std::vector<EngineVersion>& engines, std::string_view salt = {});

struct ServiceInfo {
  std::string istag;   // as make_istag() makes it
  std::string service; // Service: "pssupervise 0.1.0 (clamav, yara)"
  std::size_t max_connections = 0;
  std::chrono::seconds options_ttl{3600};
};

// ICAP head only (Encapsulated: null-body=0): OPTIONS (Methods, ISTag, Preview,
// Transfer-Preview, Allow, Max-Connections, Options-TTL, Service), an error (with the reason in
// X-Error, one line), 100 Continue.
std::string options_answer(const ServiceInfo& info, bool close);
std::string error_answer(int status, std::string_view istag, std::string_view reason, bool close);
std::string continue_answer();

struct Threat {
  std::string engine;  // "clamav"
  std::string product; // "ClamAV"
  std::string name;    // "Eicar-Test-Signature"
};

// The engines' analyses as one verdict: infected if any engine says malicious or suspicious
// (every such name listed), else unknown if any engine could not answer (every reason listed),
// else clean. An engine that does not scan the artifact's type (SKIPPED:TYPE-UNSUPPORTED) has
// nothing to say and is left out; none at all is unknown.
struct Verdict {
  enum class Kind { clean, infected, unknown };
  Kind kind = Kind::unknown;
  std::vector<Threat> threats;     // infected
  std::vector<std::string> errors; // unknown: "clamav: timeout after 60 s"
};
Verdict combine(const std::vector<backend::EngineAnalysis>& analyses);

enum class OnUnknown { allow, block };

struct Policy {
  OnUnknown on_unknown = OnUnknown::block;
  // A 204 may be sent: the client allowed it, or the answer comes at its preview (before any
  // 100 Continue, RFC 3507 §4.5) while it still holds the body.
  bool may_204 = false;
  bool body_kept = true; // the body was spooled whole (not over --body-limit)
  bool close = false;    // Connection: close
  std::string istag;
};

struct Answer {
  std::string head; // the ICAP head and the encapsulated HTTP head, ready to send
  // What follows the head, chunked: nothing, the request's own body (from its spool file),
  // or `page`.
  enum class Body { none, echo, page };
  Body body = Body::none;
  std::string page;
  int status = 0;         // the ICAP status
  std::string outcome;    // for logs and metrics: clean, infected, unknown_allowed, unknown_blocked
  std::string scan_error; // one line: why the verdict is unknown (X-Scan-Error)
};

// The answer to a REQMOD or RESPMOD whose body (if any) was scanned to `verdict`:
// - clean, or unknown and allowed: 204 when permitted, else 200 with the HTTP message
//   unmodified (its heads byte for byte, its body echoed); unknown adds X-Scan-Error. When the
//   body was not kept (over the limit) and no 204 may be sent, 413: there is nothing to echo.
// - infected: 200 with X-Infection-Found and X-Virus-ID (one each per threat), X-Violations-Found,
// and
//   an HTTP 403 page naming every threat and engine, HTML-escaped;
// - unknown and blocked: the same page saying why, with X-Scan-Error.
Answer answer(const icap::Request& request, const Verdict& verdict, const Policy& policy);

// A header value on one line, of printable ASCII, at most `max` bytes ("..." when cut).
std::string header_value(std::string_view s, std::size_t max = 512);
std::string html_escape(std::string_view s);

} // namespace pss::icap_server

#include "engine/clamd/protocol.hpp"

namespace pss::engine::clamd {

namespace {

constexpr std::string_view k_found = " FOUND";
constexpr std::string_view k_error = " ERROR";
constexpr std::string_view k_unofficial = ".UNOFFICIAL";

std::string_view trim_terminators(std::string_view s) {
  while (!s.empty() && (s.back() == '\0' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Strip "N: " as used inside IDSESSION, and "<path>: " before the status.
std::string_view after_last_colon(std::string_view s) {
  auto pos = s.rfind(": ");
  return pos == std::string_view::npos ? s : s.substr(pos + 2);
}

} // namespace

std::string frame_command(std::string_view command) {
  std::string out = "z";
  out += command;
  out.push_back('\0');
  return out;
}

std::string chunk_header(std::uint32_t length) {
  std::string out(4, '\0');
  out[0] = static_cast<char>((length >> 24) & 0xff);
  out[1] = static_cast<char>((length >> 16) & 0xff);
  out[2] = static_cast<char>((length >> 8) & 0xff);
  out[3] = static_cast<char>(length & 0xff);
  return out;
}

Reply parse_reply(std::string_view line) {
  line = trim_terminators(line);
  Reply r;
  if (line == "COMMAND READ TIMED OUT") {
    r.kind = Reply::Kind::timeout;
    r.message = line;
    return r;
  }
  if (line == "UNKNOWN COMMAND") {
    r.kind = Reply::Kind::unknown_command;
    r.message = line;
    return r;
  }
  if (line.ends_with(k_found)) {
    // The name is what follows the last ": " before " FOUND": "<path>: <Name> FOUND".
    std::string_view body = line.substr(0, line.size() - k_found.size());
    auto pos = body.rfind(": ");
    std::string_view name = pos == std::string_view::npos ? body : body.substr(pos + 2);
    std::string_view raw_name = name;
    if (name.ends_with(k_unofficial)) {
      name.remove_suffix(k_unofficial.size());
    }
    // A detection names its signature: "stream:  FOUND" or "stream: .UNOFFICIAL FOUND" is
    // not one (it would be a malicious verdict without a name).
    if (!name.empty()) {
      r.kind = Reply::Kind::found;
      r.raw_name = raw_name;
      r.name = name;
      return r;
    }
  }
  if (line.ends_with(k_error)) {
    // Protocol errors have no path ("INSTREAM size limit exceeded. ERROR"); scan errors do
    // ("stream: Can't allocate memory ERROR"). Keep the message after the path only.
    std::string_view body = line.substr(0, line.size() - k_error.size());
    r.kind = Reply::Kind::error;
    if (body.starts_with("stream: ")) {
      body.remove_prefix(8);
    }
    r.message = body;
    return r;
  }
  if (after_last_colon(line) == "OK") {
    r.kind = Reply::Kind::clean;
    r.message = line;
    return r;
  }
  r.kind = Reply::Kind::other;
  r.message = line;
  return r;
}

std::optional<Version> parse_version(std::string_view line) {
  line = trim_terminators(line);
  constexpr std::string_view k_prefix = "ClamAV ";
  if (!line.starts_with(k_prefix)) {
    return std::nullopt;
  }
  line.remove_prefix(k_prefix.size());
  Version v;
  auto slash = line.find('/');
  v.engine = line.substr(0, slash);
  if (v.engine.empty()) {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    std::string_view rest = line.substr(slash + 1);
    auto slash2 = rest.find('/');
    std::string_view defs = rest.substr(0, slash2);
    if (!defs.empty()) {
      v.definitions = std::string(defs);
    }
    if (slash2 != std::string_view::npos && slash2 + 1 < rest.size()) {
      v.db_date = std::string(rest.substr(slash2 + 1));
    }
  }
  return v;
}

} // namespace pss::engine::clamd

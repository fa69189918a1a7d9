#include "artifact/uri.hpp"

#include "util/hex.hpp"
#include "util/posix.hpp"

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pss::artifact {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Value of a base64 digit in the standard or URL-safe alphabet, or -1.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+' || c == '-') {
    return 62;
  }
  if (c == '/' || c == '_') {
    return 63;
  }
  return -1;
}

// A character for a message: printable ASCII as is, anything else as \xNN.
std::string show_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) {
    return std::string(1, c);
  }
  static constexpr char k_hex[] = "0123456789abcdef";
  return std::string("\\x") + k_hex[u >> 4] + k_hex[u & 0xf];
}

} // namespace

InputKind classify_input(std::string_view input) {
  if (input == "-") {
    return InputKind::stdin_;
  }
  if (istarts_with(input, "file:")) {
    return InputKind::file_uri;
  }
  if (istarts_with(input, "data:")) {
    return InputKind::data_uri;
  }
  if (istarts_with(input, "http:") || istarts_with(input, "https:")) {
    return InputKind::http_uri;
  }
  return InputKind::path;
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (s.size() - i < 3) { // fewer than two characters follow the '%'
      return make_error("truncated percent-escape at offset " + std::to_string(i));
    }
    int hi = hex_value(s[i + 1]);
    int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return make_error("invalid percent-escape '%" + show_char(s[i + 1]) + show_char(s[i + 2]) +
                        "' at offset " + std::to_string(i));
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return out;
}

Result<std::string> file_uri_path(std::string_view uri) {
  if (!istarts_with(uri, "file:")) {
    return make_error("not a file URI: " + quote(uri));
  }
  std::string_view rest = uri.substr(5);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return make_error(quote(uri) + ": a file URI cannot have a query or fragment "
                                   "(percent-encode '?' as %3F and '#' as %23)");
  }
  std::string_view encoded_path;
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    std::size_t slash = rest.find('/');
    std::string_view host = rest.substr(0, slash);
    if (!host.empty() && !iequals(host, "localhost")) {
      return make_error(quote(uri) + ": file URIs on host " + quote(host) +
                        " are not supported (only local files: file:///path)");
    }
    if (slash == std::string_view::npos) {
      return make_error(quote(uri) + ": file URI without a path");
    }
    encoded_path = rest.substr(slash);
  } else if (!rest.empty() && rest.front() == '/') {
    encoded_path = rest; // file:/abs/path (RFC 8089 minimal form)
  } else {
    return make_error(quote(uri) + ": relative file URIs are not supported (use file:///path)");
  }
  auto decoded = percent_decode(encoded_path);
  if (!decoded) {
    return make_error(quote(uri) + ": " + decoded.error().message);
  }
  if (decoded->find('\0') != std::string::npos) {
    return make_error(quote(uri) + ": file URI path contains a NUL byte");
  }
  return std::move(*decoded);
}

Result<DataUri> parse_data_uri(std::string_view uri) {
  if (!istarts_with(uri, "data:")) {
    return make_error("data: URI: does not start with 'data:'");
  }
  std::string_view rest = uri.substr(5);
  std::size_t comma = rest.find(',');
  if (comma == std::string_view::npos) {
    return make_error("data: URI: missing ',' before the data");
  }
  std::string_view header = rest.substr(0, comma);
  std::string_view payload = rest.substr(comma + 1);

  bool is_base64 = false;
  std::size_t semi = header.rfind(';');
  if (semi != std::string_view::npos && iequals(header.substr(semi + 1), "base64")) {
    is_base64 = true;
    header = header.substr(0, semi);
  }

  DataUri out;
  out.mediatype = std::string(header);
  auto decoded = percent_decode(payload);
  if (!decoded) {
    return make_error("data: URI: " + decoded.error().message);
  }
  if (!is_base64) {
    out.bytes = std::move(*decoded);
    return out;
  }
  auto bytes = base64_decode(*decoded);
  if (!bytes) {
    return make_error("data: URI: " + bytes.error().message);
  }
  out.bytes = std::move(*bytes);
  return out;
}

Result<std::string> base64_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size() / 4 * 3 + 3);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t digits = 0;  // base64 digits seen
  std::size_t padding = 0; // '=' seen
  std::size_t first_pad = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (is_space(c)) {
      continue;
    }
    if (c == '=') {
      if (padding == 0) {
        first_pad = i;
      }
      ++padding;
      continue;
    }
    int v = base64_value(c);
    if (v < 0) {
      return make_error("invalid base64 at offset " + std::to_string(i) + ": '" + show_char(c) +
                        "'");
    }
    if (padding > 0) {
      return make_error("invalid base64 at offset " + std::to_string(i) +
                        ": data after the '=' padding at offset " + std::to_string(first_pad));
    }
    ++digits;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  std::size_t tail = digits % 4;
  if (tail == 1) {
    return make_error("invalid base64: truncated input (" + std::to_string(digits) +
                      " digits, one too many for a whole number of bytes)");
  }
  if (padding > 0) {
    if (tail == 0 || tail + padding != 4) {
      return make_error("invalid base64 at offset " + std::to_string(first_pad) +
                        ": wrong amount of '=' padding");
    }
  }
  return out;
}

std::string file_uri(const std::filesystem::path& p) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out = "file://";
  for (unsigned char c : p.native()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    }
  }
  return out;
}

} // namespace pss::artifact

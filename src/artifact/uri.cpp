#include "artifact/uri.hpp"

#include "util/hex.hpp"
#include "util/percent.hpp"
#include "util/posix.hpp"
#include "util/size.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
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

// What a character is to base64: a digit's value (standard or URL-safe alphabet), or one of
// these.
constexpr std::int8_t k_b64_invalid = -1;
constexpr std::int8_t k_b64_space = -2; // ignored
constexpr std::int8_t k_b64_pad = -3;   // '='

constexpr std::array<std::int8_t, 256> make_base64_table() {
  std::array<std::int8_t, 256> t{};
  t.fill(k_b64_invalid);
  constexpr std::string_view digits =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    t[static_cast<unsigned char>(digits[i])] = static_cast<std::int8_t>(i);
  }
  t['-'] = 62; // URL-safe
  t['_'] = 63;
  for (char c : {' ', '\t', '\n', '\r', '\f', '\v'}) {
    t[static_cast<unsigned char>(c)] = k_b64_space;
  }
  t['='] = k_b64_pad;
  return t;
}
constexpr std::array<std::int8_t, 256> k_base64_table = make_base64_table();

// Base64 decoding of a text seen in runs, so that base64_decode and decode_data_uri (which
// sees its text in pieces, between percent-escapes) are one decoder with one set of errors.
// Offsets are positions in the base64 text, which the caller counts.
class Base64Reader {
public:
  // Takes a run of characters, the first at `offset`; the bytes they complete go to
  // emit(const char*, std::size_t). False on an invalid character (error() says which).
  template <typename Emit>
  bool take(std::string_view run, std::size_t offset, Emit&& emit) {
    std::size_t i = 0;
    while (i < run.size()) {
      if (m_bits == 0 && m_padding == 0) {
        // At a quantum's start: four digits make three bytes, decoded in a batch.
        std::array<char, 3 * 256> out;
        std::size_t n = 0;
        while (i + 4 <= run.size() && n < out.size()) {
          int a = k_base64_table[static_cast<unsigned char>(run[i])];
          int b = k_base64_table[static_cast<unsigned char>(run[i + 1])];
          int c = k_base64_table[static_cast<unsigned char>(run[i + 2])];
          int d = k_base64_table[static_cast<unsigned char>(run[i + 3])];
          if ((a | b | c | d) < 0) { // not four digits: one character at a time below
            break;
          }
          auto v = static_cast<std::uint32_t>((a << 18) | (b << 12) | (c << 6) | d);
          out[n] = static_cast<char>(v >> 16);
          out[n + 1] = static_cast<char>((v >> 8) & 0xff);
          out[n + 2] = static_cast<char>(v & 0xff);
          n += 3;
          i += 4;
        }
        if (n > 0) {
          m_digits += n / 3 * 4;
          emit(out.data(), n);
          continue;
        }
      }
      if (!take_one(run[i], offset + i, emit)) {
        return false;
      }
      ++i;
    }
    return true;
  }

  // At the end of the text: false if it stops in the middle of a byte or is badly padded.
  bool finish() {
    std::size_t tail = m_digits % 4;
    if (tail == 1) {
      m_error = make_error("invalid base64: truncated input (" + std::to_string(m_digits) +
                           " digits, one too many for a whole number of bytes)");
      return false;
    }
    if (m_padding > 0 && (tail == 0 || tail + m_padding != 4)) {
      m_error = make_error("invalid base64 at offset " + std::to_string(m_first_pad) +
                           ": wrong amount of '=' padding");
      return false;
    }
    return true;
  }

  const Error& error() const { return m_error; }

private:
  template <typename Emit>
  bool take_one(char c, std::size_t offset, Emit&& emit) {
    std::int8_t v = k_base64_table[static_cast<unsigned char>(c)];
    if (v >= 0) {
      if (m_padding > 0) {
        m_error =
            make_error("invalid base64 at offset " + std::to_string(offset) +
                       ": data after the '=' padding at offset " + std::to_string(m_first_pad));
        return false;
      }
      ++m_digits;
      m_acc = (m_acc << 6) | static_cast<std::uint32_t>(v);
      m_bits += 6;
      if (m_bits >= 8) {
        m_bits -= 8;
        char byte = static_cast<char>((m_acc >> m_bits) & 0xff);
        emit(&byte, 1);
      }
      return true;
    }
    if (v == k_b64_space) {
      return true;
    }
    if (v == k_b64_pad) {
      if (m_padding == 0) {
        m_first_pad = offset;
      }
      ++m_padding;
      return true;
    }
    m_error = make_error("invalid base64 at offset " + std::to_string(offset) + ": '" +
                         shown_char(c) + "'");
    return false;
  }

  std::uint32_t m_acc = 0;
  int m_bits = 0;            // of m_acc not yet emitted; 0 at a quantum's start
  std::size_t m_digits = 0;  // base64 digits seen
  std::size_t m_padding = 0; // '=' seen
  std::size_t m_first_pad = 0;
  Error m_error;
};

// The first malformed percent-escape in `s`, as percent_decode reports it, or nullopt.
std::optional<Error> first_escape_error(std::string_view s) {
  for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i)) {
    if (s.size() - i < 3) {
      return truncated_percent_escape(i);
    }
    if (hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) {
      return invalid_percent_escape(s[i + 1], s[i + 2], i);
    }
    i += 3;
  }
  return std::nullopt;
}

// A data: URI cut in its parts: data:[<mediatype>][;base64],<payload>.
struct DataUriParts {
  std::string_view mediatype;
  bool base64 = false;
  std::string_view payload; // still percent-encoded
};

Result<DataUriParts> split_data_uri(std::string_view uri) {
  if (!istarts_with(uri, "data:")) {
    return make_error("data: URI: does not start with 'data:'");
  }
  std::string_view rest = uri.substr(5);
  std::size_t comma = rest.find(',');
  if (comma == std::string_view::npos) {
    return make_error("data: URI: missing ',' before the data");
  }
  DataUriParts parts;
  parts.mediatype = rest.substr(0, comma);
  parts.payload = rest.substr(comma + 1);
  std::size_t semi = parts.mediatype.rfind(';');
  if (semi != std::string_view::npos && iequals(parts.mediatype.substr(semi + 1), "base64")) {
    parts.base64 = true;
    parts.mediatype = parts.mediatype.substr(0, semi);
  }
  return parts;
}

// Decodes a data: URI's payload fed in pieces: percent-escapes (which may straddle two
// pieces), then base64 if the URI says so; the bytes go to the sink in pieces of the chunk
// size, and stop going there past the size limit, while the rest is still checked. The runs
// between escapes are decoded in bulk.
class DataPayloadDecoder {
public:
  enum class Fault { none, escape, base64, sink, too_big };

  DataPayloadDecoder(bool base64, std::uint64_t max, std::size_t chunk, const ByteSink& sink)
      : m_base64(base64), m_max(max), m_chunk(std::max<std::size_t>(chunk, 1)), m_sink(sink) {
    m_out.reserve(2 * m_chunk);
  }

  // The next piece of the payload; false on a fault.
  bool feed(std::string_view raw) {
    std::size_t i = 0;
    while (i < raw.size()) {
      if (m_escape_len == 0 && raw[i] != '%') {
        std::size_t end = std::min(raw.find('%', i), raw.size());
        if (!put(raw.substr(i, end - i))) {
          return false;
        }
        m_raw_offset += end - i;
        i = end;
        continue;
      }
      char c = raw[i++];
      std::size_t offset = m_raw_offset++;
      if (m_escape_len == 0) { // c is '%'
        m_escape_len = 1;
        m_escape_offset = offset;
      } else if (m_escape_len == 1) {
        m_escape_hi = c;
        m_escape_len = 2;
      } else {
        m_escape_len = 0;
        int hi = hex_value(m_escape_hi);
        int lo = hex_value(c);
        if (hi < 0 || lo < 0) {
          return fail(Fault::escape, invalid_percent_escape(m_escape_hi, c, m_escape_offset));
        }
        char decoded = static_cast<char>((hi << 4) | lo);
        if (!put(std::string_view(&decoded, 1))) {
          return false;
        }
      }
    }
    return true;
  }

  // After the last piece: the end's checks, and the last bytes to the sink.
  bool finish() {
    if (m_escape_len != 0) {
      return fail(Fault::escape, truncated_percent_escape(m_escape_offset));
    }
    if (m_base64 && !m_reader.finish()) {
      return fail(Fault::base64, m_reader.error());
    }
    if (!flush(1)) {
      return false;
    }
    if (m_size > m_max) {
      return fail(Fault::too_big, Error());
    }
    return true;
  }

  Fault fault() const { return m_fault; }
  const Error& error() const { return m_error; }
  std::uint64_t size() const { return m_size; }

private:
  // Percent-decoded characters.
  bool put(std::string_view decoded) {
    std::size_t offset = m_decoded_offset;
    m_decoded_offset += decoded.size();
    auto emit = [this](const char* p, std::size_t n) { append(p, n); };
    if (!m_base64) {
      emit(decoded.data(), decoded.size());
    } else if (!m_reader.take(decoded, offset, emit)) {
      return fail(Fault::base64, m_reader.error());
    }
    return flush(m_chunk);
  }

  // Bytes decoded: kept for the sink while within the limit, counted always.
  void append(const char* p, std::size_t n) {
    if (m_size < m_max) {
      m_out.append(p, static_cast<std::size_t>(std::min<std::uint64_t>(n, m_max - m_size)));
    }
    m_size += n;
  }

  // Sends what is held in pieces of the chunk size, while at least `least` bytes are held.
  bool flush(std::size_t least) {
    std::size_t sent = 0;
    while (m_out.size() - sent >= least && sent < m_out.size()) {
      std::size_t n = std::min(m_chunk, m_out.size() - sent);
      auto r = m_sink(std::string_view(m_out).substr(sent, n));
      if (!r) {
        m_out.clear();
        return fail(Fault::sink, r.error());
      }
      sent += n;
    }
    m_out.erase(0, sent);
    return true;
  }

  bool fail(Fault f, Error e) {
    m_fault = f;
    m_error = std::move(e);
    return false;
  }

  bool m_base64;
  std::uint64_t m_max;
  std::size_t m_chunk;
  const ByteSink& m_sink;
  std::string m_out; // less than a chunk between calls
  std::uint64_t m_size = 0;
  std::size_t m_raw_offset = 0;     // in the payload as written
  std::size_t m_decoded_offset = 0; // in the payload percent-decoded (base64's offsets)
  int m_escape_len = 0;             // of a percent-escape begun: 0 (none), 1 ('%'), 2 ('%x')
  char m_escape_hi = 0;
  std::size_t m_escape_offset = 0;
  Base64Reader m_reader;
  Fault m_fault = Fault::none;
  Error m_error;
};

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
  DataUriParts parts = PSS_TRY(split_data_uri(uri));
  DataUri out;
  out.mediatype = std::string(parts.mediatype);
  auto decoded = percent_decode(parts.payload);
  if (!decoded) {
    return make_error("data: URI: " + decoded.error().message);
  }
  if (!parts.base64) {
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

Result<std::uint64_t> decode_data_uri(std::string_view uri, std::uint64_t max_size,
                                      const ByteSink& sink, std::size_t chunk_size) {
  DataUriParts parts = PSS_TRY(split_data_uri(uri));
  chunk_size = std::max<std::size_t>(chunk_size, 1);
  DataPayloadDecoder decoder(parts.base64, max_size, chunk_size, sink);
  bool ok = true;
  for (std::size_t i = 0; ok && i < parts.payload.size(); i += chunk_size) {
    ok = decoder.feed(parts.payload.substr(i, chunk_size));
  }
  if (ok && decoder.finish()) {
    return decoder.size();
  }
  using Fault = DataPayloadDecoder::Fault;
  switch (decoder.fault()) {
  case Fault::sink:
    return decoder.error();
  case Fault::too_big:
    return make_error("data: URI: larger than the " + format_size(max_size) + " limit");
  case Fault::base64:
    // parse_data_uri percent-decodes the whole payload before base64 sees any of it: an
    // escape error further on is the one it reports.
    if (auto e = first_escape_error(parts.payload)) {
      return make_error("data: URI: " + e->message);
    }
    break;
  case Fault::escape:
  case Fault::none:
    break;
  }
  return make_error("data: URI: " + decoder.error().message);
}

Result<std::string> base64_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size() / 4 * 3 + 3);
  Base64Reader reader;
  auto emit = [&out](const char* p, std::size_t n) { out.append(p, n); };
  if (!reader.take(s, 0, emit) || !reader.finish()) {
    return reader.error();
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

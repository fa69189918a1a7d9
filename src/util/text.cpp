#include "util/text.hpp"

#include <array>
#include <cstddef>

namespace pss::text {

namespace {

constexpr char32_t replacement = 0xFFFD;

unsigned char byte_at(std::string_view s, std::size_t i) {
  return static_cast<unsigned char>(s[i]);
}

// Appends the UTF-8 form of a valid scalar value (not a surrogate, <= U+10FFFF).
void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

bool starts_with_utf16le_bom(std::string_view s) {
  return s.size() >= 2 && byte_at(s, 0) == 0xFF && byte_at(s, 1) == 0xFE;
}

// Windows-1252 0x80–0x9F; U+FFFD for the five undefined bytes (see the header).
constexpr std::array<char16_t, 32> cp1252_high = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, // 80–87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, // 88–8F
    0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, // 90–97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178, // 98–9F
};

// One step of UTF-8 decoding at s[i]: the length of the sequence there and whether it is valid.
// An invalid sequence is the unit that becomes one U+FFFD (see sanitize_utf8 in the header).
struct Step {
  std::size_t length;
  bool valid;
};

Step utf8_step(std::string_view s, std::size_t i) {
  const unsigned char lead = byte_at(s, i);
  if (lead < 0x80) {
    return {1, true};
  }
  std::size_t need = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (lead >= 0xC0 && lead <= 0xDF) {
    need = 2;
    cp = lead & 0x1F;
    min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    cp = lead & 0x0F;
    min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF7) {
    need = 4;
    cp = lead & 0x07;
    min = 0x10000;
  } else {
    return {1, false}; // stray continuation byte, or F8–FF
  }
  std::size_t k = 1;
  while (k < need && i + k < s.size() && (byte_at(s, i + k) & 0xC0) == 0x80) {
    cp = (cp << 6) | (byte_at(s, i + k) & 0x3F);
    ++k;
  }
  if (k < need) {
    return {k, false}; // truncated
  }
  const bool valid = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
  return {need, valid};
}

bool looks_like_utf16le(std::string_view s) {
  if (s.size() < 4 || s.size() % 2 != 0) {
    return false;
  }
  std::size_t even_zeros = 0;
  std::size_t odd_zeros = 0;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    even_zeros += s[i] == '\0' ? 1 : 0;
    odd_zeros += s[i + 1] == '\0' ? 1 : 0;
  }
  const std::size_t units = s.size() / 2; // count of even-index bytes = count of odd-index bytes
  return odd_zeros * 10 >= units * 4 && even_zeros * 10 <= units;
}

// In place: the output is never longer than the input.
void normalize_newlines_in_place(std::string& s) {
  const std::size_t first_cr = s.find('\r');
  if (first_cr == std::string::npos) {
    return;
  }
  std::size_t out = first_cr;
  std::size_t i = first_cr;
  const std::size_t n = s.size();
  while (i < n) {
    const char c = s[i];
    if (c != '\r') {
      s[out++] = c;
      ++i;
    } else if (i + 1 < n && s[i + 1] == '\n') {
      s[out++] = '\n';
      i += 2;
    } else if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
      s[out++] = '\n';
      i += 3;
    } else {
      s[out++] = '\n';
      ++i;
    }
  }
  s.resize(out);
}

} // namespace

std::optional<Encoding> parse_encoding(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  if (lower == "utf-8" || lower == "utf8") {
    return Encoding::utf8;
  }
  if (lower == "cp1252" || lower == "windows-1252") {
    return Encoding::cp1252;
  }
  if (lower == "utf-16le" || lower == "utf16le") {
    return Encoding::utf16le;
  }
  if (lower == "detect") {
    return Encoding::detect;
  }
  return std::nullopt;
}

std::string_view to_string(Encoding e) {
  switch (e) {
  case Encoding::utf8:
    return "utf-8";
  case Encoding::cp1252:
    return "cp1252";
  case Encoding::utf16le:
    return "utf-16le";
  case Encoding::detect:
    return "detect";
  }
  return "unknown";
}

std::string cp1252_to_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size()); // exact for ASCII; grows amortized otherwise
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    if (b < 0x80) {
      out.push_back(ch);
    } else if (b < 0xA0) {
      append_utf8(out, cp1252_high[b - 0x80]);
    } else {
      append_utf8(out, b);
    }
  }
  return out;
}

std::string utf16le_to_utf8(std::string_view bytes) {
  if (starts_with_utf16le_bom(bytes)) {
    bytes.remove_prefix(2);
  }
  std::string out;
  out.reserve(bytes.size() / 2 + 3); // exact for ASCII; grows amortized otherwise
  const std::size_t units = bytes.size() / 2;
  auto unit = [&](std::size_t u) -> char32_t {
    return static_cast<char32_t>(byte_at(bytes, 2 * u) | (byte_at(bytes, 2 * u + 1) << 8));
  };
  for (std::size_t u = 0; u < units; ++u) {
    const char32_t c = unit(u);
    if (c >= 0xD800 && c <= 0xDBFF) {
      if (u + 1 < units) {
        const char32_t low = unit(u + 1);
        if (low >= 0xDC00 && low <= 0xDFFF) {
          append_utf8(out, 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00));
          ++u;
          continue;
        }
      }
      append_utf8(out, replacement); // high surrogate not followed by a low one
    } else if (c >= 0xDC00 && c <= 0xDFFF) {
      append_utf8(out, replacement); // low surrogate without a high one
    } else {
      append_utf8(out, c);
    }
  }
  if (bytes.size() % 2 != 0) {
    append_utf8(out, replacement);
  }
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (byte_at(bytes, i) < 0x80) {
      ++i;
      continue;
    }
    const Step step = utf8_step(bytes, i);
    if (!step.valid) {
      return false;
    }
    i += step.length;
  }
  return true;
}

std::string sanitize_utf8(std::string_view bytes) {
  if (bytes.starts_with(utf8_bom)) {
    bytes.remove_prefix(utf8_bom.size());
  }
  std::string out;
  out.reserve(bytes.size());
  std::size_t run = 0; // start of the valid bytes not yet copied
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (byte_at(bytes, i) < 0x80) {
      ++i;
      continue;
    }
    const Step step = utf8_step(bytes, i);
    if (!step.valid) {
      out.append(bytes.substr(run, i - run));
      append_utf8(out, replacement);
      run = i + step.length;
    }
    i += step.length;
  }
  out.append(bytes.substr(run));
  return out;
}

Encoding detect_encoding(std::string_view bytes) {
  if (starts_with_utf16le_bom(bytes)) {
    return Encoding::utf16le;
  }
  if (bytes.starts_with(utf8_bom)) {
    return Encoding::utf8;
  }
  if (looks_like_utf16le(bytes)) {
    return Encoding::utf16le;
  }
  if (is_valid_utf8(bytes)) {
    return Encoding::utf8;
  }
  return Encoding::cp1252;
}

std::string decode(std::string_view bytes, Encoding e) {
  if (e == Encoding::detect) {
    e = detect_encoding(bytes);
  }
  switch (e) {
  case Encoding::utf8:
    return sanitize_utf8(bytes);
  case Encoding::cp1252:
    return cp1252_to_utf8(bytes);
  case Encoding::utf16le:
    return utf16le_to_utf8(bytes);
  case Encoding::detect:
    break;
  }
  return sanitize_utf8(bytes); // unreachable: detect_encoding never returns detect
}

std::string normalize_newlines(std::string_view utf8) {
  std::string out(utf8);
  normalize_newlines_in_place(out);
  return out;
}

std::string normalize(std::string_view bytes, Encoding e) {
  std::string out = decode(bytes, e);
  normalize_newlines_in_place(out);
  return out;
}

} // namespace pss::text

// Text decoding for scanner output: Windows scanners run under Wine print CRLF text in their ANSI
// code page (CP1252 here) or in UTF-16LE. Their raw stdout bytes are turned into UTF-8 with LF
// line endings (normalize()) before any regex rule runs. Pure functions; none throws (except
// std::bad_alloc).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pss::text {

enum class Encoding { utf8, cp1252, utf16le, detect };

// "utf-8"/"utf8", "cp1252"/"windows-1252", "utf-16le"/"utf16le", "detect" (ASCII
// case-insensitive); nullopt otherwise.
std::optional<Encoding> parse_encoding(std::string_view name);
// Canonical name: "utf-8", "cp1252", "utf-16le", "detect" (parse_encoding accepts each).
std::string_view to_string(Encoding e);

// CP1252 → UTF-8. All 256 bytes map: 0x00–0x7F and 0xA0–0xFF to the same code point (as in
// Latin-1), 0x80–0x9F per the Windows-1252 table (0x80 €, 0x96 –, 0x9C œ, ...).
// Choice: the five bytes undefined in Windows-1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to U+FFFD,
// not to the C1 controls U+0081... that Windows' MultiByteToWideChar yields; a control character
// is useless to a rule and U+FFFD makes the garbage visible.
std::string cp1252_to_utf8(std::string_view bytes);

// UTF-16LE → UTF-8. A leading BOM FF FE is dropped; surrogate pairs are combined; each unpaired
// surrogate, and a trailing odd byte, becomes U+FFFD. U+0000 is kept as a NUL byte.
std::string utf16le_to_utf8(std::string_view bytes);

// True if bytes are well-formed UTF-8 (no overlong forms, no surrogate code points, nothing
// above U+10FFFF, no truncated sequence). A BOM is valid UTF-8.
bool is_valid_utf8(std::string_view bytes);

// Valid UTF-8 is returned unchanged, except that a leading UTF-8 BOM EF BB BF is dropped.
// Each invalid sequence becomes one U+FFFD:
//  - a lead byte C0–F7 with the continuation bytes its length calls for, whose value is overlong,
//    a surrogate (U+D800–U+DFFF) or above U+10FFFF, is one sequence (C0 80 → one U+FFFD;
//    ED A0 80 → one; F4 90 80 80 → one);
//  - a lead byte followed by fewer continuation bytes than it calls for (truncated, also at the
//    end) is one sequence together with the continuation bytes present (E2 82 → one U+FFFD);
//  - a stray continuation byte 80–BF, or a byte F8–FF, is one sequence by itself.
// (This differs from the Unicode "maximal subpart" practice only for the first case.)
std::string sanitize_utf8(std::string_view bytes);

// BOM FF FE → utf16le; BOM EF BB BF → utf8; no BOM but looks like UTF-16LE (at least 4 bytes,
// even length, >= 40% of the odd-index bytes are 0x00 and at most 10% of the even-index bytes
// are) → utf16le; else valid UTF-8 → utf8; else cp1252. Never returns detect. Empty → utf8.
Encoding detect_encoding(std::string_view bytes);

// To UTF-8: utf8 → sanitize_utf8, cp1252 → cp1252_to_utf8, utf16le → utf16le_to_utf8;
// detect resolves with detect_encoding first.
std::string decode(std::string_view bytes, Encoding e);

// Line endings of UTF-8 text (after decode): "\r\n" → "\n"; "\r\r\n" → "\n" (what a Windows
// program printing "\r\n" in text mode emits under Wine); a lone "\r" (not followed by "\n")
// → "\n". Scanned left to right, so "\r\r\r\n" → "\n\n" (a lone "\r", then "\r\r\n").
std::string normalize_newlines(std::string_view utf8);

// decode + normalize_newlines.
std::string normalize(std::string_view bytes, Encoding e);

} // namespace pss::text

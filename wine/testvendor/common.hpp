// common.hpp — shared by testvendor.exe and testvendor-server.exe: the signatures, the
// detection names and their precedence, the file scan, CP1252/UTF-8/UTF-16LE encoding of
// UTF-16 text, and the paths of the running exe. Header-only (each exe is one translation
// unit); include <windows.h> (after <winsock2.h> if that is needed) before this file.
#pragma once

#include <windows.h>

#include <string>
#include <string_view>
#include <vector>

namespace tv {

// All text is kept as UTF-16 and encoded only when written. \u escapes keep the
// source ASCII-only; the comments show the intended text.
constexpr const wchar_t* kProduct = L"TestVendor Antivirus";
constexpr const wchar_t* kEngineVersion = L"2.1.0";
constexpr const wchar_t* kSignatureVersion = L"2026.11.24.1";

constexpr const wchar_t* kNameEicar = L"Trojan.\u00C9icar\u2013Test (\u00FC)";  // Trojan.Éicar–Test (ü)
constexpr const wchar_t* kNameMarker = L"W\u00F6rm.T\u00EBst.Marker";          // Wörm.Tëst.Marker
constexpr const wchar_t* kNameSuspicious = L"Heur.Verd\u00E4chtig";           // Heur.Verdächtig

constexpr std::string_view kSigEicar = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE";
constexpr std::string_view kSigMarker = "PSSUPERVISE-TEST-SIGNATURE-7f3a";
constexpr std::string_view kSigSuspicious = "TESTVENDOR-SUSPICIOUS";

// Result of reading a whole file and looking for the signatures (and an optional
// extra ASCII string, testvendor-server's --hang-marker).
struct ScanResult {
    bool ok = false;
    DWORD winError = 0;
    bool eicar = false, marker = false, suspicious = false, extra = false;
};

inline ScanResult scanFile(const std::wstring& path, std::string_view extra = {}) {
    ScanResult r;
    HANDLE h = CreateFileW(path.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           nullptr, OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        r.winError = GetLastError();
        return r;
    }
    // Keep the last (longest signature - 1) bytes of each chunk so a signature
    // spanning a chunk boundary is still found.
    const size_t longest = extra.size() > kSigEicar.size() ? extra.size() : kSigEicar.size();
    const size_t keep = longest - 1;
    const size_t chunk = 1 << 20;
    std::string buf;
    std::vector<char> block(chunk);
    for (;;) {
        DWORD got = 0;
        if (!ReadFile(h, block.data(), static_cast<DWORD>(chunk), &got, nullptr)) {
            r.winError = GetLastError();
            CloseHandle(h);
            return r;
        }
        if (got == 0) break;
        buf.append(block.data(), got);
        std::string_view v = buf;
        r.eicar = r.eicar || v.find(kSigEicar) != std::string_view::npos;
        r.marker = r.marker || v.find(kSigMarker) != std::string_view::npos;
        r.suspicious = r.suspicious || v.find(kSigSuspicious) != std::string_view::npos;
        r.extra = r.extra || (!extra.empty() && v.find(extra) != std::string_view::npos);
        if (buf.size() > keep) buf.erase(0, buf.size() - keep);
    }
    CloseHandle(h);
    r.ok = true;
    return r;
}

// The verdict of a successful scan, first match wins: EICAR, marker, suspicious, clean.
struct Verdict {
    const wchar_t* verdict;  // L"infected", L"suspicious" or L"clean"
    const wchar_t* name;     // nullptr when clean
};

inline Verdict verdictOf(const ScanResult& r) {
    if (r.eicar) return {L"infected", kNameEicar};
    if (r.marker) return {L"infected", kNameMarker};
    if (r.suspicious) return {L"suspicious", kNameSuspicious};
    return {L"clean", nullptr};
}

// WideCharToMultiByte with the given code page and no flags: for 1252, characters
// that CP1252 lacks become '?' (or a best-fit letter).
inline std::string encodeCodePage(std::wstring_view s, UINT codePage) {
    if (s.empty()) return {};
    int n = WideCharToMultiByte(codePage, 0, s.data(), static_cast<int>(s.size()), nullptr, 0, nullptr,
                                nullptr);
    std::string bytes(static_cast<size_t>(n), '\0');
    WideCharToMultiByte(codePage, 0, s.data(), static_cast<int>(s.size()), bytes.data(), n, nullptr, nullptr);
    return bytes;
}
inline std::string toCp1252(std::wstring_view s) { return encodeCodePage(s, 1252); }
inline std::string toUtf8(std::wstring_view s) { return encodeCodePage(s, CP_UTF8); }

// UTF-16LE bytes without BOM; no newline translation.
inline std::string toUtf16le(std::wstring_view s) {
    std::string bytes;
    bytes.reserve(s.size() * 2);
    for (wchar_t c : s) {
        bytes.push_back(static_cast<char>(static_cast<unsigned>(c) & 0xFF));
        bytes.push_back(static_cast<char>((static_cast<unsigned>(c) >> 8) & 0xFF));
    }
    return bytes;
}

// Full path of the running exe as GetModuleFileNameW gives it (under Wine: Z:\...).
inline std::wstring selfPath() {
    std::wstring self(32768, L'\0');
    DWORD n = GetModuleFileNameW(nullptr, self.data(), static_cast<DWORD>(self.size()));
    self.resize(n);
    return self;
}

}  // namespace tv

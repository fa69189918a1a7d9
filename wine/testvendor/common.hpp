// common.hpp — shared by testvendor.exe and testvendor-server.exe: the signatures, the
// detection names and their precedence, definitions files (--signatures), the file scan,
// CP1252/UTF-8/UTF-16LE encoding of UTF-16 text, and the paths of the running exe. Header-only (each exe is one translation
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

// A signature of a definitions file (--signatures): a detection name and the ASCII string
// whose presence in a file means that detection.
struct Signature {
    std::wstring name;
    std::string needle;
};

// The signature version and the signatures beyond the built-in ones: the built-in version
// and none unless a --signatures file was loaded (loadDefinitions).
struct Definitions {
    std::wstring version = kSignatureVersion;
    std::vector<Signature> signatures;
};

// Result of reading a whole file and looking for the signatures (the built-in ones, the
// definitions file's, and an optional extra ASCII string, testvendor-server's --hang-marker).
struct ScanResult {
    bool ok = false;
    DWORD winError = 0;
    bool eicar = false, marker = false, suspicious = false, extra = false;
    long signature = -1;  // index of the first of Definitions::signatures found, -1: none
};

inline ScanResult scanFile(const std::wstring& path, const Definitions& defs, std::string_view extra = {}) {
    ScanResult r;
    HANDLE h = CreateFileW(path.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           nullptr, OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        r.winError = GetLastError();
        return r;
    }
    // Keep the last (longest signature - 1) bytes of each chunk so a signature
    // spanning a chunk boundary is still found.
    size_t longest = extra.size() > kSigEicar.size() ? extra.size() : kSigEicar.size();
    for (const Signature& s : defs.signatures)
        if (s.needle.size() > longest) longest = s.needle.size();
    const size_t keep = longest - 1;
    const size_t chunk = 1 << 20;
    std::string buf;
    std::vector<char> block(chunk);
    std::vector<bool> found(defs.signatures.size(), false);
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
        for (size_t i = 0; i < found.size(); ++i)
            if (!found[i]) found[i] = v.find(defs.signatures[i].needle) != std::string_view::npos;
        if (buf.size() > keep) buf.erase(0, buf.size() - keep);
    }
    CloseHandle(h);
    for (size_t i = 0; i < found.size() && r.signature < 0; ++i)
        if (found[i]) r.signature = static_cast<long>(i);
    r.ok = true;
    return r;
}

// The verdict of a successful scan, first match wins: EICAR, marker, the definitions file's
// signatures in file order, suspicious, clean.
struct Verdict {
    const wchar_t* verdict;  // L"infected", L"suspicious" or L"clean"
    const wchar_t* name;     // nullptr when clean; else valid as long as the Definitions
};

inline Verdict verdictOf(const ScanResult& r, const Definitions& defs) {
    if (r.eicar) return {L"infected", kNameEicar};
    if (r.marker) return {L"infected", kNameMarker};
    if (r.signature >= 0) return {L"infected", defs.signatures[static_cast<size_t>(r.signature)].name.c_str()};
    if (r.suspicious) return {L"suspicious", kNameSuspicious};
    return {L"clean", nullptr};
}

// Strict UTF-8 to UTF-16: false for invalid UTF-8.
inline bool fromUtf8(std::string_view s, std::wstring& out) {
    out.clear();
    if (s.empty()) return true;
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), nullptr, 0);
    if (n <= 0) return false;
    out.resize(static_cast<size_t>(n));
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), out.data(), n);
    return true;
}

// The path to open for a path given on the command line. Under Wine an absolute Unix path
// ("/srv/defs/signatures.txt", what a manifest's ${VAR}/file gives) is turned into its DOS
// form (Z:\srv\...) by Wine's own wine_get_dos_file_name; Windows would read it on the
// current drive. Anything else is used as it is.
inline std::wstring openablePath(const std::wstring& path) {
    if (path.empty() || path[0] != L'/' || (path.size() > 1 && path[1] == L'/')) return path;
    using DosName = WCHAR* (*)(LPCSTR);
    HMODULE k32 = GetModuleHandleW(L"kernel32.dll");
    auto toDos = k32 ? reinterpret_cast<DosName>(reinterpret_cast<void*>(GetProcAddress(k32, "wine_get_dos_file_name")))
                     : nullptr;
    if (!toDos) return path;
    WCHAR* dos = toDos(toUtf8(path).c_str());
    if (!dos) return path;
    std::wstring converted = dos;
    HeapFree(GetProcessHeap(), 0, dos);
    return converted;
}

// Reads a definitions file (testvendor.exe and testvendor-server.exe --signatures; the format
// is in wine/README.md). UTF-8, "\n" or "\r\n" line ends, an optional UTF-8 BOM:
//   version: <text>          the first line: the signature version reported
//   <name>=<string>          a detection: a file containing the printable-ASCII <string>
//                            is infected with <name> (split at the first '=', nothing trimmed)
//   # ... / blank lines      ignored
// false with `error` set (naming the file and the line) when the file cannot be read or is
// malformed: no version line, a line without '=', an empty name or string, a string that is
// not printable ASCII, text that is not UTF-8.
inline bool loadDefinitions(const std::wstring& path, Definitions& defs, std::wstring& error) {
    const std::wstring where = L"signatures file " + path;
    HANDLE h = CreateFileW(openablePath(path).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           nullptr, OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        error = L"cannot open " + where + L" (Windows error " + std::to_wstring(GetLastError()) + L")";
        return false;
    }
    constexpr size_t kMaxSize = 16u << 20;
    std::string text;
    std::vector<char> block(1 << 16);
    for (;;) {
        DWORD got = 0;
        if (!ReadFile(h, block.data(), static_cast<DWORD>(block.size()), &got, nullptr)) {
            error = L"cannot read " + where + L" (Windows error " + std::to_wstring(GetLastError()) + L")";
            CloseHandle(h);
            return false;
        }
        if (got == 0) break;
        text.append(block.data(), got);
        if (text.size() > kMaxSize) {
            error = where + L": larger than 16 MiB";
            CloseHandle(h);
            return false;
        }
    }
    CloseHandle(h);
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);

    Definitions out;
    size_t pos = 0;
    for (size_t number = 1; pos < text.size() || number == 1; ++number) {
        size_t nl = text.find('\n', pos);
        std::string_view l = std::string_view(text).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        auto fail = [&](const std::wstring& what) {
            error = where + L": line " + std::to_wstring(number) + L": " + what;
            return false;
        };
        if (number == 1) {
            constexpr std::string_view kVersion = "version:";
            if (l.substr(0, kVersion.size()) != kVersion)
                return fail(L"the first line must be \"version: <text>\"");
            std::string_view v = l.substr(kVersion.size());
            size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
            if (a == std::string_view::npos) return fail(L"the version is empty");
            if (!fromUtf8(v.substr(a, b - a + 1), out.version)) return fail(L"the version is not UTF-8");
            continue;
        }
        size_t first = l.find_first_not_of(" \t");
        if (first == std::string_view::npos || l[first] == '#') continue;  // blank line, comment
        size_t eq = l.find('=');
        if (eq == std::string_view::npos) return fail(L"no '=' (expected NAME=STRING)");
        Signature s;
        if (eq == 0) return fail(L"the detection name is empty");
        if (!fromUtf8(l.substr(0, eq), s.name)) return fail(L"the detection name is not UTF-8");
        s.needle = std::string(l.substr(eq + 1));
        if (s.needle.empty()) return fail(L"the string to find is empty");
        for (char c : s.needle)
            if (c < 0x20 || c > 0x7E) return fail(L"the string to find is not printable ASCII");
        out.signatures.push_back(std::move(s));
    }
    defs = std::move(out);
    return true;
}

// Full path of the running exe as GetModuleFileNameW gives it (under Wine: Z:\...).
inline std::wstring selfPath() {
    std::wstring self(32768, L'\0');
    DWORD n = GetModuleFileNameW(nullptr, self.data(), static_cast<DWORD>(self.size()));
    self.resize(n);
    return self;
}

}  // namespace tv

// testvendor.exe — a Windows console "antivirus scanner" for pssupervise's tests.
//
// It behaves like a real vendor CLI run under Wine: a non-ASCII banner, one result
// line per file in the ANSI code page (CP1252, CRLF via CRT text mode) or in UTF-16LE,
// verdicts in the exit code, and misbehaviour on request (hang, crash, a child that
// outlives it, garbage, huge output). See wine/README.md for the exact contract.
//
// Build (C++17, mingw-w64, no -municode: Unicode arguments come from GetCommandLineW):
//   x86_64-w64-mingw32-g++ -O2 -std=c++17 -static -static-libgcc -static-libstdc++
//       -Wall -Wextra testvendor.cpp -o testvendor.exe
// Signatures, names, definitions files (--signatures), the file scan and CP1252 encoding
// are shared with testvendor-server.exe through common.hpp.

#include <windows.h>
#include <shellapi.h>

#include "common.hpp"

#include <fcntl.h>
#include <io.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Exit codes (documented in wine/README.md).
constexpr int kClean = 0;
constexpr int kInfected = 1;
constexpr int kSuspicious = 2;
constexpr int kError = 3;
constexpr int kUsage = 10;

// All text is kept as UTF-16 and encoded only when written. \u escapes keep the
// source ASCII-only; the comments show the intended text.
// "TestVendor Antivirus 2.1.0 (c) Test Vendor GmbH – Überprüfung"
constexpr const wchar_t* kBanner =
    L"TestVendor Antivirus 2.1.0 (c) Test Vendor GmbH \u2013 \u00DCberpr\u00FCfung";
using tv::kNameEicar;
using tv::kNameMarker;
using tv::kNameSuspicious;

enum class Encoding { Cp1252, Utf16le };
enum class Mode { Scan, Hang, Crash, Spawn, Garbage, Bigout };

// One output stream in the selected encoding.
//  Cp1252:  WideCharToMultiByte(1252) then fwrite in CRT text mode, so "\n" -> "\r\n";
//           characters outside CP1252 become '?'.
//  Utf16le: stream switched to binary; "\n" is expanded to "\r\n" here; optional BOM
//           before the first write.
class Output {
public:
    Output(FILE* f, Encoding enc, bool bom) : f_(f), enc_(enc), bom_(bom) {
        if (enc_ == Encoding::Utf16le) _setmode(_fileno(f_), _O_BINARY);
    }

    void write(std::wstring_view s) {
        if (enc_ == Encoding::Cp1252) {
            if (s.empty()) return;
            std::string bytes = tv::toCp1252(s);
            std::fwrite(bytes.data(), 1, bytes.size(), f_);
        } else {
            std::wstring w;
            w.reserve(s.size() + s.size() / 16 + 1);
            if (bom_ && !started_) w.push_back(L'\uFEFF');
            for (wchar_t c : s) {
                if (c == L'\n') w.push_back(L'\r');
                w.push_back(c);
            }
            // wchar_t is 16-bit little-endian on Windows: the buffer already is UTF-16LE.
            std::fwrite(w.data(), sizeof(wchar_t), w.size(), f_);
        }
        started_ = true;
    }
    void line(std::wstring_view s) {
        write(s);
        write(L"\n");
    }
    void flush() { std::fflush(f_); }

private:
    FILE* f_;
    Encoding enc_;
    bool bom_;
    bool started_ = false;
};

struct Options {
    Encoding encoding = Encoding::Cp1252;
    Mode mode = Mode::Scan;
    bool bom = false;
    bool version = false;
    bool help = false;
    bool banner = true;
    bool childStdioNull = false;  // spawn: give the child NUL instead of our stdio
    unsigned long mib = 50;
    std::wstring modeName = L"scan";
    std::wstring encodingName = L"cp1252";
    std::wstring file;
    std::wstring signatures;  // --signatures FILE: a definitions file (empty: built-in only)
    std::wstring error;       // non-empty: bad usage
};

constexpr const wchar_t* kUsageText =
    L"usage: testvendor.exe [options] FILE\n"
    L"  --version                     print product, engine and signature versions\n"
    L"  --encoding cp1252|utf16le     output encoding (default cp1252)\n"
    L"  --bom                         utf16le: start each stream with a byte order mark\n"
    L"  --mode scan|hang|crash|spawn|garbage|bigout   (default scan)\n"
    L"  --mib N                       bigout: MiB of filler lines before the scan (default 50)\n"
    L"  --no-banner                   do not print the banner\n"
    L"  --child-stdio inherit|null    spawn: the child's stdio (default inherit)\n"
    L"  --signatures FILE             a definitions file: \"version: V\", then NAME=STRING lines\n"
    L"  --help                        this text\n"
    L"exit codes: 0 clean, 1 infected, 2 suspicious, 3 error, 10 usage\n";

Options parseArgs(int argc, wchar_t** argv) {
    Options o;
    bool endOfOptions = false;
    auto value = [&](int& i) -> const wchar_t* {
        if (i + 1 >= argc) {
            o.error = std::wstring(L"option ") + argv[i] + L" needs a value";
            return nullptr;
        }
        return argv[++i];
    };
    for (int i = 1; i < argc && o.error.empty(); ++i) {
        std::wstring_view a = argv[i];
        if (endOfOptions || a.size() < 2 || a.substr(0, 2) != L"--") {
            if (!o.file.empty()) o.error = L"more than one FILE given";
            o.file = argv[i];
            if (o.file.empty()) o.error = L"FILE is empty";
        } else if (a == L"--") {
            endOfOptions = true;
        } else if (a == L"--version") {
            o.version = true;
        } else if (a == L"--help") {
            o.help = true;
        } else if (a == L"--bom") {
            o.bom = true;
        } else if (a == L"--no-banner") {
            o.banner = false;
        } else if (a == L"--encoding") {
            const wchar_t* v = value(i);
            if (!v) break;
            std::wstring_view s = v;
            if (s == L"cp1252") o.encoding = Encoding::Cp1252;
            else if (s == L"utf16le") o.encoding = Encoding::Utf16le;
            else o.error = std::wstring(L"unknown encoding '") + v + L"'";
            o.encodingName = v;
        } else if (a == L"--mode") {
            const wchar_t* v = value(i);
            if (!v) break;
            std::wstring_view s = v;
            if (s == L"scan") o.mode = Mode::Scan;
            else if (s == L"hang") o.mode = Mode::Hang;
            else if (s == L"crash") o.mode = Mode::Crash;
            else if (s == L"spawn") o.mode = Mode::Spawn;
            else if (s == L"garbage") o.mode = Mode::Garbage;
            else if (s == L"bigout") o.mode = Mode::Bigout;
            else o.error = std::wstring(L"unknown mode '") + v + L"'";
            o.modeName = v;
        } else if (a == L"--mib") {
            const wchar_t* v = value(i);
            if (!v) break;
            wchar_t* end = nullptr;
            unsigned long n = std::wcstoul(v, &end, 10);
            if (*v == L'\0' || *end != L'\0' || *v == L'-' || n > 65536)
                o.error = std::wstring(L"bad --mib value '") + v + L"'";
            o.mib = n;
        } else if (a == L"--signatures") {
            const wchar_t* v = value(i);
            if (!v) break;
            o.signatures = v;
            if (o.signatures.empty()) o.error = L"--signatures is empty";
        } else if (a == L"--child-stdio") {
            const wchar_t* v = value(i);
            if (!v) break;
            std::wstring_view s = v;
            if (s == L"inherit") o.childStdioNull = false;
            else if (s == L"null") o.childStdioNull = true;
            else o.error = std::wstring(L"unknown --child-stdio '") + v + L"'";
        } else {
            o.error = std::wstring(L"unknown option '") + argv[i] + L"'";
        }
    }
    if (o.error.empty() && o.file.empty() && !o.version && !o.help) o.error = L"no FILE given";
    return o;
}

// Windows command-line quoting (the rules CommandLineToArgvW undoes).
std::wstring quoteArg(std::wstring_view a) {
    if (!a.empty() && a.find_first_of(L" \t\n\v\"") == std::wstring_view::npos) return std::wstring(a);
    std::wstring q = L"\"";
    size_t backslashes = 0;
    for (wchar_t c : a) {
        if (c == L'\\') {
            ++backslashes;
            continue;
        }
        if (c == L'"') q.append(backslashes * 2 + 1, L'\\');
        else q.append(backslashes, L'\\');
        backslashes = 0;
        q.push_back(c);
    }
    q.append(backslashes * 2, L'\\');
    q.push_back(L'"');
    return q;
}

using tv::ScanResult;
using tv::scanFile;  // reads the whole file in 1 MiB chunks and looks for the signatures

// Prints the verdict line and "Scan finished.", returns the exit code.
int scanAndReport(Output& out, const std::wstring& file, const tv::Definitions& defs) {
    ScanResult r = scanFile(file, defs);
    int code;
    if (!r.ok) {
        out.line(file + L": error: cannot open (Windows error " + std::to_wstring(r.winError) + L")");
        code = kError;
    } else {
        tv::Verdict v = tv::verdictOf(r, defs);
        if (v.name) out.line(file + L": " + v.verdict + L": " + v.name);
        else out.line(file + L": clean");
        code = !v.name ? kClean : std::wstring_view(v.verdict) == L"infected" ? kInfected : kSuspicious;
    }
    out.line(L"Scan finished.");
    out.flush();
    return code;
}

// Random lines that match no verdict pattern (no ':' anywhere), some non-ASCII.
void printGarbage(Output& out) {
    std::mt19937 rng(GetTickCount() ^ (GetCurrentProcessId() << 16));
    const std::wstring alphabet =
        L"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;!?-_=+*#%&/()[]<>"
        L"\u00E9\u00FC\u00DF\u00C4\u20AC\u2013";  // é ü ß Ä € –
    std::uniform_int_distribution<int> lines(5, 30), len(0, 70);
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    for (int n = lines(rng); n > 0; --n) {
        std::wstring l;
        for (int k = len(rng); k > 0; --k) l.push_back(alphabet[pick(rng)]);
        out.line(l);
    }
    out.flush();
}

// N MiB of filler: every line is 64 output bytes in cp1252 (62 chars + CRLF) and
// 128 in utf16le, so the filler is exactly N MiB in the selected encoding.
void printBigOutput(Output& out, unsigned long mib, Encoding enc) {
    const unsigned long long bytesPerLine = enc == Encoding::Cp1252 ? 64 : 128;
    const unsigned long long lines = mib * (1ull << 20) / bytesPerLine;
    std::wstring block;
    block.reserve(64 * 4096);
    for (unsigned long long i = 0; i < lines; ++i) {
        // "progress line 000000000001 " + 35 dots = 62 characters, then "\n".
        std::wstring num = std::to_wstring(i + 1);
        block += L"progress line ";
        block.append(12 - num.size(), L'0');
        block += num;
        block += L" ...................................\n";
        if (block.size() >= 63 * 4096) {
            out.write(block);
            block.clear();
        }
    }
    out.write(block);
    out.flush();
}

// Starts "<self> --mode hang --no-banner --encoding E -- FILE" and returns its PID (0 on failure).
DWORD spawnHangingChild(const Options& o, DWORD& err) {
    const std::wstring self = tv::selfPath();
    std::wstring cmd = quoteArg(self) + L" --mode hang --no-banner --encoding " + o.encodingName +
                       L" -- " + quoteArg(o.file);

    STARTUPINFOW si{};
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, TRUE};
    HANDLE nul = INVALID_HANDLE_VALUE;
    const HANDLE std[] = {GetStdHandle(STD_INPUT_HANDLE), GetStdHandle(STD_OUTPUT_HANDLE),
                          GetStdHandle(STD_ERROR_HANDLE)};
    // Wine creates the std handles inheritable; with bInheritHandles=TRUE every
    // inheritable handle goes to the child, so "null" must clear the flag explicitly.
    const DWORD inherit = o.childStdioNull ? 0 : HANDLE_FLAG_INHERIT;
    for (HANDLE h : std)
        if (h && h != INVALID_HANDLE_VALUE) SetHandleInformation(h, HANDLE_FLAG_INHERIT, inherit);
    if (o.childStdioNull) {
        nul = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                          OPEN_EXISTING, 0, nullptr);
        si.hStdInput = si.hStdOutput = si.hStdError = nul;
    } else {
        // The child shares our stdio (like a real helper process would), so a pipe
        // reader sees no EOF until the child is gone too.
        si.hStdInput = std[0];
        si.hStdOutput = std[1];
        si.hStdError = std[2];
    }
    PROCESS_INFORMATION pi{};
    BOOL ok = CreateProcessW(self.c_str(), cmd.data(), nullptr, nullptr, TRUE, 0, nullptr, nullptr, &si, &pi);
    err = ok ? 0 : GetLastError();
    if (nul != INVALID_HANDLE_VALUE) CloseHandle(nul);
    if (!ok) return 0;
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return pi.dwProcessId;
}

}  // namespace

int main() {
    int argc = 0;
    wchar_t** argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (!argv) return kUsage;
    Options o = parseArgs(argc, argv);

    Output out(stdout, o.encoding, o.bom);
    Output err(stderr, o.encoding, o.bom);

    if (!o.error.empty()) {
        err.line(L"testvendor: " + o.error);
        err.write(kUsageText);
        err.flush();
        return kUsage;
    }
    if (o.help) {
        out.write(kUsageText);
        out.flush();
        return 0;
    }

    // The definitions file is read at every run: an update is seen by the next one. An
    // unusable file is an error of the run (exit 3) whatever the mode.
    tv::Definitions defs;
    std::wstring defsError;
    if (!o.signatures.empty() && !tv::loadDefinitions(o.signatures, defs, defsError)) {
        if (o.version) {
            out.line(L"error: " + defsError);
        } else {
            if (o.banner) {
                out.line(kBanner);
                out.line(L"");
            }
            out.line(o.file + L": error: " + defsError);
            out.line(L"Scan finished.");
        }
        out.flush();
        return kError;
    }

    if (o.version) {
        out.line(std::wstring(L"TestVendor Antivirus ") + tv::kEngineVersion);
        out.line(std::wstring(L"Engine version: ") + tv::kEngineVersion);
        out.line(L"Signature version: " + defs.version);
        out.flush();
        return 0;
    }

    if (o.banner) {
        out.line(kBanner);
        out.line(L"");
        out.flush();
    }

    switch (o.mode) {
    case Mode::Scan:
        break;
    case Mode::Hang:
        for (;;) Sleep(INFINITE);
    case Mode::Crash: {
        // Both volatiles matter: GCC -O2 otherwise deletes the store (measured) or
        // turns a known null dereference into a trap instruction.
        volatile int* volatile p = nullptr;
        *p = 42;  // access violation, 0xC0000005
        return kError;              // not reached
    }
    case Mode::Spawn: {
        DWORD e = 0;
        DWORD pid = spawnHangingChild(o, e);
        if (pid == 0) {
            out.line(L"error: cannot start child (Windows error " + std::to_wstring(e) + L")");
            out.flush();
            return kError;
        }
        out.line(L"child pid: " + std::to_wstring(pid));
        out.flush();
        break;
    }
    case Mode::Garbage:
        printGarbage(out);
        return 0;
    case Mode::Bigout:
        printBigOutput(out, o.mib, o.encoding);
        break;
    }
    return scanAndReport(out, o.file, defs);
}

// testvendor-server.exe — a Windows "vendor antivirus JSON-RPC server" for pssupervise's tests.
//
// It behaves like a real vendor scan daemon run under Wine: start-up log lines in the ANSI
// code page, a JSON-RPC 2.0 service on 127.0.0.1:PORT (one thread per connection) or on
// stdin/stdout, responses whose bytes are CP1252, UTF-8 or UTF-16LE, line or Content-Length
// framing, and misbehaviour on request (slow start, refused start, crash, hanging scans).
// See wine/README.md ("testvendor-server.exe") for the exact contract.
//
// Build (C++17, mingw-w64, no -municode: Unicode arguments come from GetCommandLineW):
//   x86_64-w64-mingw32-g++ -O2 -std=c++17 -static -static-libgcc -static-libstdc++
//       -Wall -Wextra testvendor-server.cpp -o testvendor-server.exe -lws2_32
//
// All I/O goes through WriteFile/ReadFile/send/recv (no CRT stdio), so nothing is buffered
// and no CRT text-mode translation touches the responses. Threads are Win32 threads.

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <shellapi.h>

#include "common.hpp"

#include <cerrno>
#include <cstdlib>
#include <cwchar>
#include <map>
#include <string>
#include <string_view>

namespace {

// Exit codes (documented in wine/README.md).
constexpr int kOk = 0;
constexpr int kRefused = 3;
constexpr int kListenFailed = 4;
constexpr int kBadSignatures = 6;
constexpr int kUsage = 10;

// JSON-RPC error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kCannotOpen = -32001;

constexpr size_t kMaxMessage = 64u << 20;  // a longer line/body ends the connection

enum class Framing { Line, ContentLength };
enum class Encoding { Utf8, Cp1252, Utf16le };

struct Options {
    bool stdio = false;
    bool tcp = false;
    unsigned port = 0;
    Framing framing = Framing::Line;
    Encoding encoding = Encoding::Cp1252;
    DWORD initMs = 0;
    long crashAfter = -1;  // -1: never
    std::string hangMarker;
    bool refuseStart = false;
    DWORD workMs = 0;          // CPU-bound work per scan; > 0 also serialises the scans
    std::wstring signatures;  // --signatures FILE (empty: the built-in signatures only)
    bool help = false;
    std::wstring error;  // non-empty: bad usage
};

constexpr const wchar_t* kUsageText =
    L"usage: testvendor-server.exe (--port N | --stdio) [options]\n"
    L"  --port N                        listen on 127.0.0.1:N (TCP; 0 picks a free port)\n"
    L"  --stdio                         requests on stdin, responses on stdout, log on stderr\n"
    L"  --framing line|content-length   message delimiting (default line)\n"
    L"  --encoding utf8|cp1252|utf16le  encoding of the responses (default cp1252)\n"
    L"  --init-ms N                     start-up delay in milliseconds (default 0)\n"
    L"  --crash-after N                 answer N scans, crash on the next one\n"
    L"  --hang-marker S                 a scan of a file containing S never returns\n"
    L"  --refuse-start                  fail the license check at start-up (exit 3)\n"
    L"  --signatures FILE               definitions file, read once at start (exit 6 if unusable)\n"
    L"  --work-ms N                     N ms of CPU work per scan, one scan at a time (default 0)\n"
    L"  --help                          this text\n"
    L"methods: ping, version, scan {\"path\": \"C:\\\\file\"}, shutdown\n"
    L"exit codes: 0 finished, 3 license check failed, 4 cannot listen, 6 bad signatures file,\n"
    L"            10 usage\n";

// ---------------------------------------------------------------------------------------
// Log lines: CP1252 + CRLF, written with WriteFile (so each line is "flushed"), serialised.

class Log {
public:
    void init(HANDLE h) {
        h_ = h;
        InitializeCriticalSection(&cs_);
    }
    void line(std::wstring_view s) {
        std::string bytes = tv::toCp1252(std::wstring(s) + L"\r\n");
        EnterCriticalSection(&cs_);
        writeAll(h_, bytes);
        LeaveCriticalSection(&cs_);
    }
    // The last line: the lock is never released, so nothing can be logged after it.
    [[noreturn]] void lastLineAndExit(std::wstring_view s, int code) {
        std::string bytes = tv::toCp1252(std::wstring(s) + L"\r\n");
        EnterCriticalSection(&cs_);
        writeAll(h_, bytes);
        ExitProcess(static_cast<UINT>(code));
    }
    static void writeAll(HANDLE h, const std::string& bytes) {
        size_t off = 0;
        while (off < bytes.size()) {
            DWORD done = 0;
            if (!WriteFile(h, bytes.data() + off, static_cast<DWORD>(bytes.size() - off), &done, nullptr) ||
                done == 0)
                return;
            off += done;
        }
    }

private:
    HANDLE h_ = INVALID_HANDLE_VALUE;
    CRITICAL_SECTION cs_;
};

Log g_log;
Options g_opt;
tv::Definitions g_defs;     // built-in version and no extra signature, or --signatures's
volatile LONG g_scans = 0;  // scan requests received so far (all connections)
CRITICAL_SECTION g_scanLock;  // --work-ms: held by the one scan being served

// Text for stdout/stderr outside the log (usage): CP1252, "\n" -> "\r\n".
void writeText(DWORD stdHandle, std::wstring_view s) {
    std::wstring w;
    for (wchar_t c : s) {
        if (c == L'\n') w.push_back(L'\r');
        w.push_back(c);
    }
    Log::writeAll(GetStdHandle(stdHandle), tv::toCp1252(w));
}

// ExitProcess from whichever thread got "shutdown": other connections (even hanging
// scans) end with the process.
[[noreturn]] void finishAndExit() { g_log.lastLineAndExit(L"JSON RPC server has finished.", kOk); }

[[noreturn]] void crash() {
    // Both volatiles matter: GCC -O2 otherwise deletes the store (measured for
    // testvendor.exe) or turns a known null dereference into a trap instruction.
    volatile int* volatile p = nullptr;
    *p = 42;  // access violation, 0xC0000005
    ExitProcess(kRefused);  // not reached
}

[[noreturn]] void hangForever() {
    for (;;) Sleep(INFINITE);
}

// ---------------------------------------------------------------------------------------
// Arguments.

bool parseUnsigned(const wchar_t* v, unsigned long max, unsigned long& out) {
    if (!v || !*v || *v == L'-' || *v == L'+' || *v == L' ') return false;
    wchar_t* end = nullptr;
    errno = 0;
    unsigned long n = std::wcstoul(v, &end, 10);
    if (*end != L'\0' || errno != 0 || n > max) return false;
    out = n;
    return true;
}

Options parseArgs(int argc, wchar_t** argv) {
    Options o;
    auto value = [&](int& i) -> const wchar_t* {
        if (i + 1 >= argc) {
            o.error = std::wstring(L"option ") + argv[i] + L" needs a value";
            return nullptr;
        }
        return argv[++i];
    };
    for (int i = 1; i < argc && o.error.empty(); ++i) {
        std::wstring_view a = argv[i];
        if (a == L"--help") {
            o.help = true;
        } else if (a == L"--stdio") {
            o.stdio = true;
        } else if (a == L"--refuse-start") {
            o.refuseStart = true;
        } else if (a == L"--port") {
            const wchar_t* v = value(i);
            if (!v) break;
            unsigned long n = 0;
            if (!parseUnsigned(v, 65535, n)) o.error = std::wstring(L"bad --port value '") + v + L"'";
            o.port = static_cast<unsigned>(n);
            o.tcp = true;
        } else if (a == L"--framing") {
            const wchar_t* v = value(i);
            if (!v) break;
            std::wstring_view s = v;
            if (s == L"line") o.framing = Framing::Line;
            else if (s == L"content-length") o.framing = Framing::ContentLength;
            else o.error = std::wstring(L"unknown framing '") + v + L"'";
        } else if (a == L"--encoding") {
            const wchar_t* v = value(i);
            if (!v) break;
            std::wstring_view s = v;
            if (s == L"utf8") o.encoding = Encoding::Utf8;
            else if (s == L"cp1252") o.encoding = Encoding::Cp1252;
            else if (s == L"utf16le") o.encoding = Encoding::Utf16le;
            else o.error = std::wstring(L"unknown encoding '") + v + L"'";
        } else if (a == L"--init-ms") {
            const wchar_t* v = value(i);
            if (!v) break;
            unsigned long n = 0;
            if (!parseUnsigned(v, 86400000ul, n)) o.error = std::wstring(L"bad --init-ms value '") + v + L"'";
            o.initMs = n;
        } else if (a == L"--crash-after") {
            const wchar_t* v = value(i);
            if (!v) break;
            unsigned long n = 0;
            if (!parseUnsigned(v, 1000000000ul, n))
                o.error = std::wstring(L"bad --crash-after value '") + v + L"'";
            o.crashAfter = static_cast<long>(n);
        } else if (a == L"--work-ms") {
            const wchar_t* v = value(i);
            if (!v) break;
            unsigned long n = 0;
            if (!parseUnsigned(v, 600000ul, n)) o.error = std::wstring(L"bad --work-ms value '") + v + L"'";
            o.workMs = n;
        } else if (a == L"--signatures") {
            const wchar_t* v = value(i);
            if (!v) break;
            o.signatures = v;
            if (o.signatures.empty()) o.error = L"--signatures is empty";
        } else if (a == L"--hang-marker") {
            const wchar_t* v = value(i);
            if (!v) break;
            std::wstring_view s = v;
            if (s.empty()) o.error = L"--hang-marker is empty";
            for (wchar_t c : s) {
                if (c < 0x20 || c > 0x7E) {
                    o.error = L"--hang-marker must be printable ASCII";
                    break;
                }
                o.hangMarker.push_back(static_cast<char>(c));
            }
        } else {
            o.error = std::wstring(L"unknown option '") + argv[i] + L"'";
        }
    }
    if (o.error.empty() && !o.help) {
        if (o.stdio && o.tcp) o.error = L"--port and --stdio are mutually exclusive";
        else if (!o.stdio && !o.tcp) o.error = L"one of --port N or --stdio is required";
    }
    return o;
}

// ---------------------------------------------------------------------------------------
// --work-ms: CPU-bound work measured in the thread's own CPU time, so that it occupies a core
// for that long however many other threads the machine runs.

// User + kernel time of the calling thread in 100 ns units; false if unavailable.
bool threadCpuTime(ULONGLONG& t) {
    FILETIME created, exited, kernel, user;
    if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user)) return false;
    auto ticks = [](const FILETIME& f) { return (static_cast<ULONGLONG>(f.dwHighDateTime) << 32) | f.dwLowDateTime; };
    t = ticks(kernel) + ticks(user);
    return true;
}

volatile ULONGLONG g_workSink = 0;  // the hash's result, so the compiler keeps the loop

// Hashes (FNV-1a over a counter) until the thread's CPU time has grown by `ms`. Wine reads a
// thread's times from /proc in clock ticks (10 ms): the work is rounded up to whole ticks.
// Should the CPU clock not move at all in 2 s of spinning, wall time is used instead.
void busyWork(DWORD ms) {
    const ULONGLONG want = static_cast<ULONGLONG>(ms) * 10000;
    ULONGLONG start = 0, now = 0;
    bool cpuClock = threadCpuTime(start);
    const ULONGLONG wallStart = GetTickCount64();
    ULONGLONG h = 14695981039346656037ull ^ g_workSink;
    for (;;) {
        for (ULONGLONG i = 0; i < 100000; ++i) {
            h ^= i & 0xFF;
            h *= 1099511628211ull;
        }
        g_workSink = h;
        const ULONGLONG wall = (GetTickCount64() - wallStart) * 10000;
        if (cpuClock && threadCpuTime(now)) {
            if (now - start >= want) return;
            if (now == start && wall >= 20000000) cpuClock = false;
        } else {
            cpuClock = false;
            if (wall >= want) return;
        }
    }
}

// With --work-ms, one scan at a time: the others wait here (their connections queue).
class ScanTurn {
public:
    ScanTurn() : held_(g_opt.workMs > 0) {
        if (held_) EnterCriticalSection(&g_scanLock);
    }
    ~ScanTurn() { release(); }
    void release() {
        if (held_) LeaveCriticalSection(&g_scanLock);
        held_ = false;
    }

private:
    bool held_;
};

// ---------------------------------------------------------------------------------------
// Minimal JSON: just enough for JSON-RPC requests. Strings are decoded to UTF-16 (\uXXXX
// escapes map 1:1 to UTF-16 code units, so surrogate pairs come out as pairs; raw
// non-ASCII bytes, which the contract does not promise, are read as UTF-8).

class JsonReader {
public:
    explicit JsonReader(std::string_view s) : s_(s) {}

    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
    }
    bool atEnd() {
        ws();
        return i_ >= s_.size();
    }
    char peek() {
        ws();
        return i_ < s_.size() ? s_[i_] : '\0';
    }
    bool eat(char c) {
        if (peek() != c) return false;
        ++i_;
        return true;
    }
    size_t pos() const { return i_; }
    std::string_view slice(size_t from, size_t to) const { return s_.substr(from, to - from); }

    bool string(std::wstring* out) {
        if (!eat('"')) return false;
        for (;;) {
            if (i_ >= s_.size()) return false;
            unsigned char c = static_cast<unsigned char>(s_[i_++]);
            if (c == '"') return true;
            if (c < 0x20) return false;
            if (c == '\\') {
                if (i_ >= s_.size()) return false;
                char e = s_[i_++];
                wchar_t w;
                switch (e) {
                case '"': w = L'"'; break;
                case '\\': w = L'\\'; break;
                case '/': w = L'/'; break;
                case 'b': w = L'\b'; break;
                case 'f': w = L'\f'; break;
                case 'n': w = L'\n'; break;
                case 'r': w = L'\r'; break;
                case 't': w = L'\t'; break;
                case 'u': {
                    unsigned v = 0;
                    if (!hex4(v)) return false;
                    w = static_cast<wchar_t>(v);
                    break;
                }
                default: return false;
                }
                if (out) out->push_back(w);
            } else if (c < 0x80) {
                if (out) out->push_back(static_cast<wchar_t>(c));
            } else {
                utf8(c, out);
            }
        }
    }

    bool number() {
        ws();
        size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        if (i_ >= s_.size()) return false;
        if (s_[i_] == '0') ++i_;
        else if (!digits()) return false;
        if (i_ < s_.size() && s_[i_] == '.') {
            ++i_;
            if (!digits()) return false;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        return i_ > start;
    }

    bool literal(std::string_view word) {
        ws();
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }

    // Any JSON value, checked and skipped.
    bool value(int depth = 0) {
        if (depth > 64) return false;
        char c = peek();
        if (c == '"') return string(nullptr);
        if (c == '{') {
            ++i_;
            if (eat('}')) return true;
            do {
                if (!string(nullptr) || !eat(':') || !value(depth + 1)) return false;
            } while (eat(','));
            return eat('}');
        }
        if (c == '[') {
            ++i_;
            if (eat(']')) return true;
            do {
                if (!value(depth + 1)) return false;
            } while (eat(','));
            return eat(']');
        }
        if (c == 't') return literal("true");
        if (c == 'f') return literal("false");
        if (c == 'n') return literal("null");
        return number();
    }

private:
    bool digits() {
        size_t start = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        return i_ > start;
    }
    bool hex4(unsigned& v) {
        if (i_ + 4 > s_.size()) return false;
        for (int k = 0; k < 4; ++k) {
            char h = s_[i_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
            else return false;
        }
        return true;
    }
    // Decodes one UTF-8 sequence whose lead byte was just read; bad input gives U+FFFD.
    void utf8(unsigned char lead, std::wstring* out) {
        int more = lead >= 0xF0 && lead < 0xF5 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC2 && lead < 0xE0 ? 1 : -1;
        if (lead >= 0xF5) more = -1;
        unsigned cp = more == 3 ? lead & 0x07 : more == 2 ? lead & 0x0F : lead & 0x1F;
        for (int k = 0; k < more; ++k) {
            if (i_ >= s_.size() || (static_cast<unsigned char>(s_[i_]) & 0xC0) != 0x80) {
                more = -1;
                break;
            }
            cp = (cp << 6) | (static_cast<unsigned char>(s_[i_++]) & 0x3F);
        }
        if (more < 0 || (cp >= 0xD800 && cp < 0xE000) || cp > 0x10FFFF) cp = 0xFFFD;
        if (!out) return;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out->push_back(static_cast<wchar_t>(0xD800 + (cp >> 10)));
            out->push_back(static_cast<wchar_t>(0xDC00 + (cp & 0x3FF)));
        } else {
            out->push_back(static_cast<wchar_t>(cp));
        }
    }

    std::string_view s_;
    size_t i_ = 0;
};

// JSON string literal of UTF-16 text: non-ASCII stays raw (it is encoded with the whole
// response), only '"', '\' and control characters are escaped.
std::wstring jsonString(std::wstring_view s) {
    std::wstring q = L"\"";
    for (wchar_t c : s) {
        switch (c) {
        case L'"': q += L"\\\""; break;
        case L'\\': q += L"\\\\"; break;
        case L'\b': q += L"\\b"; break;
        case L'\f': q += L"\\f"; break;
        case L'\n': q += L"\\n"; break;
        case L'\r': q += L"\\r"; break;
        case L'\t': q += L"\\t"; break;
        default:
            if (c < 0x20) {
                const wchar_t* hex = L"0123456789abcdef";
                q += L"\\u00";
                q.push_back(hex[(c >> 4) & 0xF]);
                q.push_back(hex[c & 0xF]);
            } else {
                q.push_back(c);
            }
        }
    }
    q.push_back(L'"');
    return q;
}

std::wstring ascii(std::string_view s) { return std::wstring(s.begin(), s.end()); }

// ---------------------------------------------------------------------------------------
// Requests.

struct Request {
    std::wstring id = L"null";  // raw JSON text of the id, echoed as received
    bool hasId = false;         // no "id" member: a notification, never answered
    std::wstring method;
    bool paramsOk = true;  // params absent, or an object
    std::map<std::wstring, std::wstring> params;  // its string members
};

std::wstring resultResponse(const std::wstring& id, const std::wstring& result) {
    return L"{\"jsonrpc\":\"2.0\",\"id\":" + id + L",\"result\":" + result + L"}";
}
std::wstring errorResponse(const std::wstring& id, int code, std::wstring_view message) {
    return L"{\"jsonrpc\":\"2.0\",\"id\":" + id + L",\"error\":{\"code\":" + std::to_wstring(code) +
           L",\"message\":" + jsonString(message) + L"}}";
}

// Parses one request. On failure returns the error response to send.
bool parseRequest(std::string_view text, Request& r, std::wstring& failure) {
    JsonReader j(text);
    if (j.peek() != '{') {
        // Valid JSON that is not an object (a batch, a number, ...) is an invalid request.
        JsonReader k(text);
        if (k.value() && k.atEnd()) failure = errorResponse(L"null", kInvalidRequest, L"Invalid Request");
        else failure = errorResponse(L"null", kParseError, L"Parse error");
        return false;
    }
    j.eat('{');
    bool idOk = true, versionOk = false, methodOk = false;
    if (!j.eat('}')) {
        do {
            std::wstring key;
            if (!j.string(&key) || !j.eat(':')) {
                failure = errorResponse(L"null", kParseError, L"Parse error");
                return false;
            }
            bool ok = true;
            if (key == L"id") {
                char c = j.peek();
                size_t from = j.pos();
                if (c == '"') ok = j.string(nullptr);
                else if (c == 'n') ok = j.literal("null");
                else if (c == '-' || (c >= '0' && c <= '9')) ok = j.number();
                else {
                    ok = j.value();
                    idOk = false;
                }
                r.id = ascii(j.slice(from, j.pos()));  // peek() skipped the blanks before it
                r.hasId = true;
            } else if (key == L"jsonrpc") {
                std::wstring v;
                if (j.peek() == '"') {
                    ok = j.string(&v);
                    versionOk = v == L"2.0";
                } else {
                    ok = j.value();
                    versionOk = false;
                }
            } else if (key == L"method") {
                if (j.peek() == '"') {
                    r.method.clear();
                    ok = j.string(&r.method);
                    methodOk = true;
                } else {
                    ok = j.value();
                    methodOk = false;
                }
            } else if (key == L"params") {
                r.params.clear();
                if (j.peek() == '{') {
                    r.paramsOk = true;
                    j.eat('{');
                    if (!j.eat('}')) {
                        do {
                            std::wstring name, v;
                            if (!j.string(&name) || !j.eat(':')) {
                                ok = false;
                                break;
                            }
                            if (j.peek() == '"') {
                                if (!j.string(&v)) {
                                    ok = false;
                                    break;
                                }
                                r.params[name] = v;
                            } else if (!j.value(1)) {
                                ok = false;
                                break;
                            }
                        } while (j.eat(','));
                        ok = ok && j.eat('}');
                    }
                } else {
                    ok = j.value();
                    r.paramsOk = false;
                }
            } else {
                ok = j.value();
            }
            if (!ok) {
                failure = errorResponse(L"null", kParseError, L"Parse error");
                return false;
            }
        } while (j.eat(','));
        if (!j.eat('}')) {
            failure = errorResponse(L"null", kParseError, L"Parse error");
            return false;
        }
    }
    if (!j.atEnd()) {
        failure = errorResponse(L"null", kParseError, L"Parse error");
        return false;
    }
    if (!idOk) {
        failure = errorResponse(L"null", kInvalidRequest, L"Invalid Request");
        return false;
    }
    if (!versionOk || !methodOk) {
        failure = errorResponse(r.id, kInvalidRequest, L"Invalid Request");
        return false;
    }
    return true;
}

std::wstring scan(const Request& r) {
    auto it = r.params.find(L"path");
    if (!r.paramsOk || it == r.params.end() || it->second.empty())
        return errorResponse(r.id, kInvalidParams, L"Invalid params: \"path\" (a string) is required");
    const std::wstring& path = it->second;

    LONG n = InterlockedIncrement(&g_scans);
    if (g_opt.crashAfter >= 0 && n > g_opt.crashAfter) crash();

    ScanTurn turn;
    if (g_opt.workMs > 0) busyWork(g_opt.workMs);
    tv::ScanResult s = tv::scanFile(path, g_defs, g_opt.hangMarker);
    turn.release();
    if (!s.ok)
        return errorResponse(r.id, kCannotOpen,
                             L"cannot open " + path + L" (Windows error " + std::to_wstring(s.winError) + L")");
    if (s.extra) hangForever();  // only this connection: the turn is given up first
    tv::Verdict v = tv::verdictOf(s, g_defs);
    std::wstring result = L"{\"verdict\":" + jsonString(v.verdict);
    if (v.name) {
        result += L",\"name\":" + jsonString(v.name);
        result += L",\"report\":" + jsonString(path + L": " + v.verdict + L": " + v.name);
    } else {
        result += L",\"report\":" + jsonString(path + L": clean");
    }
    result += L"}";
    return resultResponse(r.id, result);
}

// Handles one message; returns the response text (empty: none) and sets shutdown.
std::wstring handle(std::string_view text, bool& shutdown) {
    Request r;
    std::wstring failure;
    if (!parseRequest(text, r, failure)) return failure;

    std::wstring response;
    if (!r.paramsOk) {
        response = errorResponse(r.id, kInvalidParams, L"Invalid params: \"params\" must be an object");
    } else if (r.method == L"ping") {
        response = resultResponse(r.id, L"\"pong\"");
    } else if (r.method == L"version") {
        response = resultResponse(r.id, std::wstring(L"{\"product\":") + jsonString(tv::kProduct) +
                                            L",\"engine_version\":" + jsonString(tv::kEngineVersion) +
                                            L",\"signature_version\":" + jsonString(g_defs.version) +
                                            L"}");
    } else if (r.method == L"scan") {
        response = scan(r);
    } else if (r.method == L"shutdown") {
        response = resultResponse(r.id, L"true");
        shutdown = true;
    } else {
        response = errorResponse(r.id, kMethodNotFound, L"Method not found");
    }
    return r.hasId ? response : std::wstring();
}

// ---------------------------------------------------------------------------------------
// Transport: a byte channel (socket or stdin/stdout) plus framing.

class Channel {
public:
    virtual ~Channel() = default;
    virtual int read(char* buf, int n) = 0;  // > 0 bytes, 0 end of input
    virtual bool write(const std::string& bytes) = 0;
};

class SocketChannel : public Channel {
public:
    explicit SocketChannel(SOCKET s) : s_(s) {}
    int read(char* buf, int n) override {
        int got = recv(s_, buf, n, 0);
        return got > 0 ? got : 0;
    }
    bool write(const std::string& bytes) override {
        size_t off = 0;
        while (off < bytes.size()) {
            int sent = send(s_, bytes.data() + off, static_cast<int>(bytes.size() - off), 0);
            if (sent <= 0) return false;
            off += static_cast<size_t>(sent);
        }
        return true;
    }

private:
    SOCKET s_;
};

class StdioChannel : public Channel {
public:
    StdioChannel() : in_(GetStdHandle(STD_INPUT_HANDLE)), out_(GetStdHandle(STD_OUTPUT_HANDLE)) {}
    int read(char* buf, int n) override {
        DWORD got = 0;
        if (!ReadFile(in_, buf, static_cast<DWORD>(n), &got, nullptr)) return 0;  // broken pipe: EOF
        return static_cast<int>(got);
    }
    bool write(const std::string& bytes) override {
        Log::writeAll(out_, bytes);
        return true;
    }

private:
    HANDLE in_, out_;
};

class FrameReader {
public:
    explicit FrameReader(Channel& ch) : ch_(ch) {}

    enum Result { Message, Eof, BadFrame };

    // The next message body; BadFrame: a Content-Length header block without a usable length.
    Result next(std::string& msg) {
        if (g_opt.framing == Framing::Line) {
            for (;;) {
                std::string l;
                Result r = line(l);
                if (r != Message) return r;
                if (l.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
                msg = std::move(l);
                return Message;
            }
        }
        // Content-Length: header lines up to an empty line, then exactly N bytes.
        bool sawHeader = false, haveLength = false;
        size_t length = 0;
        for (;;) {
            std::string l;
            Result r = line(l);
            if (r != Message) return r;
            if (!l.empty() && l.back() == '\r') l.pop_back();
            if (l.empty()) {
                if (!sawHeader) continue;  // stray blank lines between messages
                break;
            }
            sawHeader = true;
            size_t colon = l.find(':');
            if (colon == std::string::npos) continue;
            std::string name = l.substr(0, colon);
            for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
            if (name != "content-length") continue;
            std::string v = l.substr(colon + 1);
            size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
            v = a == std::string::npos ? std::string() : v.substr(a, b - a + 1);
            haveLength = !v.empty() && v.size() <= 10 && v.find_first_not_of("0123456789") == std::string::npos;
            if (haveLength) length = std::strtoull(v.c_str(), nullptr, 10);
            if (length > kMaxMessage) haveLength = false;
        }
        if (!haveLength) return BadFrame;
        while (buf_.size() - pos_ < length)
            if (!fill()) return Eof;
        msg.assign(buf_, pos_, length);
        pos_ += length;
        return Message;
    }

private:
    // One "\n"-terminated line without the "\n"; at end of input an unterminated rest
    // counts as a last line.
    Result line(std::string& l) {
        size_t searched = 0;  // bytes after pos_ known to hold no '\n' (fill() may move pos_)
        for (;;) {
            size_t nl = buf_.find('\n', pos_ + searched);
            if (nl != std::string::npos) {
                l.assign(buf_, pos_, nl - pos_);
                if (!l.empty() && l.back() == '\r' && g_opt.framing == Framing::Line) l.pop_back();
                pos_ = nl + 1;
                return Message;
            }
            searched = buf_.size() - pos_;
            if (searched > kMaxMessage) return Eof;
            if (!fill()) {
                if (searched == 0) return Eof;
                l.assign(buf_, pos_, std::string::npos);
                pos_ = buf_.size();
                return Message;
            }
        }
    }
    bool fill() {
        if (pos_ > 0 && pos_ >= buf_.size() / 2) {
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        char tmp[65536];
        int got = ch_.read(tmp, sizeof tmp);
        if (got <= 0) return false;
        buf_.append(tmp, static_cast<size_t>(got));
        return true;
    }

    Channel& ch_;
    std::string buf_;
    size_t pos_ = 0;
};

std::string encode(const std::wstring& s) {
    switch (g_opt.encoding) {
    case Encoding::Utf8: return tv::toUtf8(s);
    case Encoding::Cp1252: return tv::toCp1252(s);
    case Encoding::Utf16le: return tv::toUtf16le(s);
    }
    return {};
}

std::string frame(const std::wstring& response) {
    if (g_opt.framing == Framing::Line) return encode(response + L"\n");
    std::string body = encode(response);
    return "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Serves requests on one channel until end of input (returns) or shutdown (exits).
void serve(Channel& ch) {
    FrameReader reader(ch);
    for (;;) {
        std::string msg;
        FrameReader::Result r = reader.next(msg);
        if (r == FrameReader::Eof) return;
        bool shutdown = false;
        std::wstring response = r == FrameReader::BadFrame
                                    ? errorResponse(L"null", kParseError, L"Parse error: no valid Content-Length")
                                    : handle(msg, shutdown);
        bool sent = response.empty() || ch.write(frame(response));
        if (shutdown) finishAndExit();
        if (!sent) return;
    }
}

DWORD WINAPI connectionThread(LPVOID arg) {
    SOCKET s = reinterpret_cast<SOCKET>(arg);
    SocketChannel ch(s);
    serve(ch);
    closesocket(s);
    return 0;
}

}  // namespace

int main() {
    int argc = 0;
    wchar_t** argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (!argv) return kUsage;
    g_opt = parseArgs(argc, argv);
    if (!g_opt.error.empty()) {
        writeText(STD_ERROR_HANDLE, L"testvendor-server: " + g_opt.error + L"\n");
        writeText(STD_ERROR_HANDLE, kUsageText);
        return kUsage;
    }
    if (g_opt.help) {
        writeText(STD_OUTPUT_HANDLE, kUsageText);
        return kOk;
    }

    g_log.init(GetStdHandle(g_opt.stdio ? STD_ERROR_HANDLE : STD_OUTPUT_HANDLE));

    const std::wstring self = tv::selfPath();
    const std::wstring folder = self.substr(0, self.find_last_of(L'\\') + 1);
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    const bool wine = ntdll && GetProcAddress(ntdll, "wine_get_version");

    g_log.line(L"Starting TestVendor Antivirus JSON RPC server...");
    g_log.line(std::wstring(L"OS environment: ") + (wine ? L"WINE" : L"WINDOWS"));
    g_log.line(L"Installation path: " + folder);
    g_log.line(L"Executable path: " + self);
    g_log.line(L"JSON RPC server initialization started (PID: " + std::to_wstring(GetCurrentProcessId()) + L")...");
    if (g_opt.refuseStart) g_log.lastLineAndExit(L"License check failed: license expired", kRefused);
    // The definitions are read once: new ones need a new server. The error goes to stderr
    // (the log's stream with --stdio), and the server never gets ready.
    std::wstring defsError;
    if (!g_opt.signatures.empty() && !tv::loadDefinitions(g_opt.signatures, g_defs, defsError)) {
        writeText(STD_ERROR_HANDLE, L"testvendor-server: error: " + defsError + L"\n");
        return kBadSignatures;
    }
    InitializeCriticalSection(&g_scanLock);
    if (g_opt.workMs > 0)
        g_log.line(L"Scan work: " + std::to_wstring(g_opt.workMs) + L" ms of CPU time per scan, one scan at a time");
    if (g_opt.initMs > 0) g_log.line(L"Loading signatures (" + std::to_wstring(g_opt.initMs) + L" ms)...");
    Sleep(g_opt.initMs);

    if (g_opt.stdio) {
        g_log.line(L"JSON RPC server initialization completed, listening on stdio...");
        StdioChannel ch;
        serve(ch);
        finishAndExit();  // end of input
    }

    WSADATA wsa;
    int e = WSAStartup(MAKEWORD(2, 2), &wsa);
    SOCKET ls = INVALID_SOCKET;
    if (e == 0) {
        ls = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
        if (ls == INVALID_SOCKET) e = WSAGetLastError();
    }
    if (e == 0) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<u_short>(g_opt.port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, SOMAXCONN) != 0)
            e = WSAGetLastError();
    }
    if (e != 0)
        g_log.lastLineAndExit(L"error: cannot listen on 127.0.0.1:" + std::to_wstring(g_opt.port) +
                                  L" (WSA error " + std::to_wstring(e) + L")",
                              kListenFailed);
    sockaddr_in bound{};
    int len = sizeof bound;
    getsockname(ls, reinterpret_cast<sockaddr*>(&bound), &len);  // --port 0: the chosen port
    g_log.line(L"JSON RPC server initialization completed, listening on 127.0.0.1:" +
               std::to_wstring(ntohs(bound.sin_port)) + L"...");

    for (;;) {
        SOCKET c = accept(ls, nullptr, nullptr);
        if (c == INVALID_SOCKET) {
            Sleep(10);  // e.g. WSAEMFILE: keep the server alive
            continue;
        }
        HANDLE t = CreateThread(nullptr, 0, connectionThread, reinterpret_cast<LPVOID>(c), 0, nullptr);
        if (t) CloseHandle(t);
        else closesocket(c);
    }
}

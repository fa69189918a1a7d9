#include "artifact/fetch.hpp"
#include "artifact/magic.hpp"
#include "util/temp_file.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using pss::artifact::Artifact;
using pss::artifact::FetchOptions;

namespace {

const std::string k_eicar =
    R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";
const std::string k_eicar_sha256 =
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
const std::string k_eicar_base64 = "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVE"
                                   "lWSVJVUy1URVNULUZJTEUhJEgrSCo=";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

std::size_t count_entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) {
    ++n;
  }
  return n;
}

unsigned file_mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Runs `f` with stdin redirected from the file `p`.
template <typename F>
auto with_stdin_from(const fs::path& p, F&& f) {
  int saved = ::dup(STDIN_FILENO);
  REQUIRE(saved >= 0);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::dup2(fd, STDIN_FILENO) == STDIN_FILENO);
  ::close(fd);
  auto r = f();
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  return r;
}

// A tiny HTTP/1.1 server on 127.0.0.1 (ephemeral port) with canned responses, one connection
// at a time, every response with "Connection: close".
//   /eicar          200 with the EICAR string
//   /missing        404
//   /redirect/N     302 to /redirect/N-1, and /redirect/0 to /eicar
//   /to-file        302 to file:///etc/hostname
//   /big            200 with Content-Length: 4096
//   /big-unsized    200 with 4096 bytes and no Content-Length
//   /hang           never answers (the connection is held open until the server stops)
class TestHttpServer {
public:
  TestHttpServer() {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_listen >= 0);
    int one = 1;
    ::setsockopt(m_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_listen, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { run(); });
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;
  ~TestHttpServer() {
    m_stop = true;
    ::shutdown(m_listen, SHUT_RDWR); // wakes the blocking accept()
    m_thread.join();
    ::close(m_listen);
    for (int fd : m_held) {
      ::close(fd);
    }
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
  }

private:
  void run() {
    for (;;) {
      int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (m_stop) {
          return;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;
        }
        return;
      }
      serve(fd);
    }
  }

  static void send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        return; // the client went away (e.g. it aborted an oversized download)
      }
      off += static_cast<std::size_t>(n);
    }
  }

  static std::string response(const std::string& status, const std::string& headers,
                              const std::string& body, bool with_length = true) {
    std::string r = "HTTP/1.1 " + status + "\r\nConnection: close\r\n" + headers;
    if (with_length) {
      r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    return r + "\r\n" + body;
  }

  void serve(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        ::close(fd);
        return;
      }
      req.append(buf, static_cast<std::size_t>(n));
    }
    std::size_t start = req.find(' ') + 1;
    std::string path = req.substr(start, req.find(' ', start) - start);
    std::string out;
    if (path == "/hang") {
      m_held.push_back(fd);
      return;
    }
    if (path == "/eicar") {
      out = response("200 OK", "Content-Type: application/octet-stream\r\n", k_eicar);
    } else if (path.rfind("/redirect/", 0) == 0) {
      int n = std::atoi(path.c_str() + 10);
      std::string to = n <= 0 ? "/eicar" : "/redirect/" + std::to_string(n - 1);
      out = response("302 Found", "Location: " + to + "\r\n", "");
    } else if (path == "/to-file") {
      out = response("302 Found", "Location: file:///etc/hostname\r\n", "");
    } else if (path == "/big") {
      out = response("200 OK", "", std::string(4096, 'A'));
    } else if (path == "/big-unsized") {
      out = response("200 OK", "", std::string(4096, 'A'), false);
    } else {
      out = response("404 Not Found", "", "not found\n");
    }
    send_all(fd, out);
    ::close(fd);
  }

  int m_listen = -1;
  unsigned m_port = 0;
  std::atomic<bool> m_stop{false};
  std::vector<int> m_held; // only touched by the server thread until join()
  std::thread m_thread;
};

} // namespace

TEST_CASE("artifact::magic") {
  using namespace pss::artifact;
  CHECK(mimetype_of_buffer(k_eicar).value() == "text/plain");
  std::string gzip("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00"
                   "\x00",
                   20);
  CHECK(mimetype_of_buffer(gzip).value() == "application/gzip"); // not decompressed

  SUBCASE("one handle per thread") {
    std::string other;
    std::thread t([&] { other = mimetype_of_buffer(gzip).value(); });
    t.join();
    CHECK(other == "application/gzip");
  }
  SUBCASE("a missing file is an error naming it") {
    auto r = mimetype_of_file("/nonexistent/pss-magic");
    REQUIRE(!r);
    CHECK(contains(r.error().message, "/nonexistent/pss-magic"));
  }
}

TEST_CASE("artifact::fetch") {
  using namespace pss::artifact;
  auto work = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  fs::path temps = work.path() / "temps";
  fs::create_directory(temps);
  fs::permissions(temps, fs::perms::owner_all);
  fs::path files = work.path() / "files";
  fs::create_directory(files);
  FetchOptions opts;
  opts.temp_dir = temps;

  fs::path eicar = files / "eicar.com";
  write_file(eicar, k_eicar);

  SUBCASE("a plain file is used in place") {
    auto a = fetch(eicar.native(), opts);
    REQUIRE(a.has_value());
    CHECK(a->name == eicar.native());
    CHECK(a->path == eicar);
    CHECK_FALSE(a->temp.has_value());
    CHECK(a->size == k_eicar.size());
    CHECK(a->sha256 == k_eicar_sha256);
    CHECK(a->mimetype == "text/plain");
    CHECK(count_entries(temps) == 0);
  }

  SUBCASE("without digest a plain file is not read: no sha256, its size from the file system") {
    opts.digest = false;
    auto a = fetch(eicar.native(), opts);
    REQUIRE(a.has_value());
    CHECK(a->path == eicar);
    CHECK(a->size == k_eicar.size());
    CHECK(a->sha256.empty());
    CHECK(a->mimetype == "text/plain");
    auto dir = fetch(files.native(), opts); // still refused: a folder is not an artifact
    REQUIRE(!dir);
    CHECK(contains(dir.error().message, "not a regular file"));
    auto missing = fetch((files / "missing").native(), opts);
    REQUIRE(!missing);
  }

  SUBCASE("without digest, bytes written to a temp file are still hashed") {
    opts.digest = false;
    auto a = fetch("data:application/octet-stream;base64," + k_eicar_base64, opts);
    REQUIRE(a.has_value());
    CHECK(a->sha256 == k_eicar_sha256);
  }

  SUBCASE("a symlink to a file is followed") {
    fs::create_symlink(eicar, files / "link");
    auto a = fetch((files / "link").native(), opts);
    REQUIRE(a.has_value());
    CHECK(a->sha256 == k_eicar_sha256);
  }

  SUBCASE("file:// URIs") {
    auto a = fetch("file://" + eicar.native(), opts);
    REQUIRE(a.has_value());
    CHECK(a->path == eicar);
    CHECK(a->sha256 == k_eicar_sha256);

    fs::path spaced = files / "with space";
    write_file(spaced, "x");
    auto b = fetch("file://localhost" + files.native() + "/with%20space", opts);
    REQUIRE(b.has_value());
    CHECK(b->size == 1);

    auto remote = fetch("file://example.com/etc/hostname", opts);
    REQUIRE(!remote);
    CHECK(contains(remote.error().message, "not supported"));
  }

  SUBCASE("file URIs and paths can be refused") {
    opts.allow_file_uris = false;
    auto uri = fetch("file://" + eicar.native(), opts);
    REQUIRE(!uri);
    CHECK(uri.error().message == "file://" + eicar.native() + ": file URIs are not allowed here");
    auto path = fetch(eicar.native(), opts);
    REQUIRE(!path);
    CHECK(contains(path.error().message, "not allowed"));
    CHECK(fetch("data:,abc", opts).has_value()); // data: stays allowed
  }

  SUBCASE("data: URIs go to a private temp file removed with the Artifact") {
    fs::path temp_path;
    {
      auto a = fetch("data:application/octet-stream;base64," + k_eicar_base64, opts);
      REQUIRE(a.has_value());
      REQUIRE(a->temp.has_value());
      temp_path = a->path;
      CHECK(a->temp->path() == a->path);
      CHECK(a->path.parent_path() == temps);
      CHECK(file_mode(a->path) == 0600);
      CHECK(a->size == k_eicar.size());
      CHECK(a->sha256 == k_eicar_sha256);
      CHECK(a->mimetype == "text/plain");
      CHECK(count_entries(temps) == 1);

      auto moved = std::move(*a); // moving the Artifact keeps the file
      CHECK(fs::exists(temp_path));
    }
    CHECK_FALSE(fs::exists(temp_path));
    CHECK(count_entries(temps) == 0);

    // Percent-encoded: only '%' needs escaping in the EICAR string.
    auto p = fetch("data:,X5O!P%25@AP[4%5CPZX54(P%5E)7CC)7%7D$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
                   "$H+H*",
                   opts);
    REQUIRE(p.has_value());
    CHECK(p->sha256 == k_eicar_sha256);

    auto bad = fetch("data:;base64,WDVP!", opts);
    REQUIRE(!bad);
    CHECK(bad.error().message == "data: URI: invalid base64 at offset 4: '!'");
    auto no_comma = fetch("data:text/plain", opts);
    REQUIRE(!no_comma);
    CHECK(contains(no_comma.error().message, "missing ','"));
  }

  SUBCASE("size limits") {
    opts.max_size = 1024 * 1024;
    auto big = fetch("data:," + std::string(1024 * 1024 + 1, 'a'), opts);
    REQUIRE(!big);
    CHECK(big.error().message == "data: URI: larger than the 1 MiB limit");
    CHECK(fetch("data:," + std::string(1024 * 1024, 'a'), opts)
              .has_value()); // exactly the limit is fine

    opts.max_size = 10;
    auto file = fetch(eicar.native(), opts);
    REQUIRE(!file);
    CHECK(file.error().message == "'" + eicar.native() + "': larger than the 10 bytes limit");
    CHECK(count_entries(temps) == 0);
  }

  SUBCASE("missing files, directories, FIFOs") {
    fs::path missing = files / "missing";
    auto m = fetch(missing.native(), opts);
    REQUIRE(!m);
    CHECK(m.error().message == "'" + missing.native() + "': No such file or directory");

    auto d = fetch(files.native(), opts);
    REQUIRE(!d);
    CHECK(d.error().message == "'" + files.native() + "': not a regular file (directory)");

    fs::path fifo = files / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto f = fetch(fifo.native(), opts); // must not block waiting for a writer
    REQUIRE(!f);
    CHECK(f.error().message == "'" + fifo.native() + "': not a regular file (FIFO)");

    fs::create_symlink(fifo, files / "fifo-link");
    auto fl = fetch((files / "fifo-link").native(), opts);
    REQUIRE(!fl);
    CHECK(contains(fl.error().message, "not a regular file (FIFO)"));

    auto dev = fetch("/dev/null", opts);
    REQUIRE(!dev);
    CHECK(dev.error().message == "'/dev/null': not a regular file (character device)");

    auto dangling_uri = fetch("file://" + missing.native(), opts);
    REQUIRE(!dangling_uri);
    CHECK(dangling_uri.error().message ==
          "file://" + missing.native() + ": No such file or directory");
  }

  SUBCASE("unreadable file") {
    fs::path secret = files / "secret";
    write_file(secret, "s");
    fs::permissions(secret, fs::perms::none);
    if (::geteuid() == 0) {
      MESSAGE("running as root: permissions are not enforced, unreadable-file check skipped");
    } else {
      auto r = fetch(secret.native(), opts);
      REQUIRE(!r);
      CHECK(r.error().message == "'" + secret.native() + "': Permission denied");
    }
  }

  SUBCASE("stdin") {
    fs::path input = files / "stdin-input";
    write_file(input, k_eicar);
    fs::path temp_path;
    {
      auto a = with_stdin_from(input, [&] { return fetch("-", opts); });
      REQUIRE(a.has_value());
      CHECK(a->name == "-");
      REQUIRE(a->temp.has_value());
      temp_path = a->path;
      CHECK(file_mode(a->path) == 0600);
      CHECK(a->sha256 == k_eicar_sha256);
      CHECK(a->mimetype == "text/plain");
    }
    CHECK_FALSE(fs::exists(temp_path));

    opts.max_size = 16;
    auto big = with_stdin_from(input, [&] { return fetch("-", opts); });
    REQUIRE(!big);
    CHECK(big.error().message == "stdin: larger than the 16 bytes limit");
    CHECK(count_entries(temps) == 0); // the partial temp file is gone

    opts.max_size = 1024;
    auto bytes = with_stdin_from(input, [&] { return fetch_bytes("-", opts); });
    CHECK(bytes.value() == k_eicar);
  }

  SUBCASE("temp dir errors name the input") {
    opts.temp_dir = work.path() / "no-such-dir";
    auto r = fetch("data:,abc", opts);
    REQUIRE(!r);
    CHECK(contains(r.error().message, "data: URI: cannot create a temporary file in"));
  }

  SUBCASE("fetch_bytes") {
    CHECK(fetch_bytes(eicar.native(), opts).value() == k_eicar);
    CHECK(fetch_bytes("file://" + eicar.native(), opts).value() == k_eicar);
    CHECK(fetch_bytes("data:;base64," + k_eicar_base64, opts).value() == k_eicar);
    opts.max_size = 4;
    auto big = fetch_bytes("data:,hello", opts);
    REQUIRE(!big);
    CHECK(big.error().message == "data: URI: larger than the 4 bytes limit");
    CHECK(!fetch_bytes(eicar.native(), opts));
    CHECK(!fetch_bytes(files.native(), opts));
    CHECK(count_entries(temps) == 0);
  }
}

TEST_CASE("artifact::fetch http") {
  using namespace pss::artifact;
  ::setenv("no_proxy", "127.0.0.1", 0); // a proxy from the environment must not intercept
  auto work = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  FetchOptions opts;
  opts.temp_dir = work.path();
  opts.connect_timeout = std::chrono::seconds(2);
  opts.total_timeout = std::chrono::seconds(10);
  TestHttpServer server;

  SUBCASE("200 with a body") {
    fs::path temp_path;
    {
      auto a = fetch(server.url("/eicar"), opts);
      REQUIRE(a.has_value());
      CHECK(a->name == server.url("/eicar"));
      REQUIRE(a->temp.has_value());
      temp_path = a->path;
      CHECK(a->path.parent_path() == work.path());
      CHECK(file_mode(a->path) == 0600);
      CHECK(a->size == k_eicar.size());
      CHECK(a->sha256 == k_eicar_sha256);
      CHECK(a->mimetype == "text/plain");
    }
    CHECK_FALSE(fs::exists(temp_path));
    CHECK(fetch_bytes(server.url("/eicar"), opts).value() == k_eicar);
  }

  SUBCASE("404") {
    auto r = fetch(server.url("/missing"), opts);
    REQUIRE(!r);
    CHECK(r.error().message == server.url("/missing") + ": HTTP 404");
    CHECK(count_entries(work.path()) == 0); // the temp file went with the error
    auto b = fetch_bytes(server.url("/missing"), opts);
    REQUIRE(!b);
    CHECK(b.error().message == server.url("/missing") + ": HTTP 404");
  }

  SUBCASE("redirects") {
    opts.max_redirects = 3;
    auto ok = fetch(server.url("/redirect/2"), opts); // 3 redirects
    REQUIRE(ok.has_value());
    CHECK(ok->sha256 == k_eicar_sha256);

    auto too_many = fetch(server.url("/redirect/10"), opts);
    REQUIRE(!too_many);
    CHECK(too_many.error().message ==
          server.url("/redirect/10") + ": too many redirects (more than 3)");
    CHECK(count_entries(work.path()) == 1); // only the file of `ok`
  }

  SUBCASE("bodies over the limit") {
    opts.max_size = 1024;
    auto sized = fetch(server.url("/big"), opts);
    REQUIRE(!sized);
    CHECK(sized.error().message == server.url("/big") + ": larger than the 1 KiB limit");

    auto unsized = fetch(server.url("/big-unsized"), opts);
    REQUIRE(!unsized);
    CHECK(unsized.error().message == server.url("/big-unsized") + ": larger than the 1 KiB limit");
    CHECK(count_entries(work.path()) == 0);

    auto bytes = fetch_bytes(server.url("/big-unsized"), opts);
    REQUIRE(!bytes);
    CHECK(contains(bytes.error().message, "larger than the 1 KiB limit"));
  }

  SUBCASE("a server that never answers hits the total timeout") {
    // /hang holds the connection until the server stops: only the total timeout ends the
    // fetch, and the error says so.
    opts.total_timeout = std::chrono::seconds(1);
    auto r = fetch(server.url("/hang"), opts);
    REQUIRE(!r);
    CHECK(contains(r.error().message, server.url("/hang") + ": "));
    CHECK(contains(r.error().message, "timed out"));
    CHECK(count_entries(work.path()) == 0);
  }

  SUBCASE("redirects go to http and https only") {
    auto r = fetch(server.url("/to-file"), opts);
    REQUIRE(!r);
    CHECK(contains(r.error().message, server.url("/to-file") + ": "));
    CHECK(contains(r.error().message, "file"));
  }

  SUBCASE("connection refused") {
    auto r = fetch("http://127.0.0.1:1/nothing-listens", opts);
    REQUIRE(!r);
    CHECK(contains(r.error().message, "http://127.0.0.1:1/nothing-listens: "));
  }
}

TEST_CASE("artifact::fetch allowed_file_prefixes") {
  using namespace pss::artifact;
  auto work = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  fs::path root = fs::canonical(work.path()); // TMPDIR itself may be behind a symlink
  fs::path allowed = root / "allowed";
  fs::path outside = root / "outside";
  fs::path sibling = root / "allowed-not"; // shares a string prefix with "allowed"
  for (const fs::path& d : {allowed, outside, sibling, allowed / "sub"}) {
    fs::create_directory(d);
  }
  write_file(allowed / "eicar.com", k_eicar);
  write_file(allowed / "sub" / "deep", "deep");
  write_file(outside / "secret", "secret");
  write_file(sibling / "x", "x");
  fs::create_symlink(allowed / "eicar.com", allowed / "link-in");
  fs::create_symlink("../outside/secret", allowed / "link-out");
  fs::create_symlink(outside, allowed / "dir-out");
  fs::create_symlink(allowed, root / "alias");

  FetchOptions opts;
  opts.temp_dir = root;
  opts.allowed_file_prefixes = std::vector<fs::path>{allowed};
  auto refused = [](const std::string& label) {
    return label + ": refused: outside the directories allowed for local files";
  };

  SUBCASE("a file inside is fetched, by path or file:// URI") {
    auto a = fetch((allowed / "eicar.com").native(), opts);
    REQUIRE(a.has_value());
    CHECK(a->path == allowed / "eicar.com");
    CHECK(a->sha256 == k_eicar_sha256);
    auto u = fetch("file://" + (allowed / "sub" / "deep").native(), opts);
    REQUIRE(u.has_value());
    CHECK(u->size == 4);
    CHECK(fetch_bytes((allowed / "sub" / "deep").native(), opts).value() == "deep");
  }

  SUBCASE("symlinks and .. that stay inside are fine; the Artifact has the canonical path") {
    auto l = fetch((allowed / "link-in").native(), opts);
    REQUIRE(l.has_value());
    CHECK(l->path == allowed / "eicar.com");
    auto d = fetch((allowed / "sub" / ".." / "eicar.com").native(), opts);
    REQUIRE(d.has_value());
    CHECK(d->path == allowed / "eicar.com");
    auto via_alias = fetch((root / "alias" / "eicar.com").native(), opts);
    REQUIRE(via_alias.has_value());
    CHECK(via_alias->path == allowed / "eicar.com");
  }

  SUBCASE("a prefix given through a symlink or with a trailing slash") {
    opts.allowed_file_prefixes = std::vector<fs::path>{root / "alias/"};
    CHECK(fetch((allowed / "eicar.com").native(), opts).has_value());
    CHECK(!fetch((outside / "secret").native(), opts));
  }

  SUBCASE("a file outside is refused") {
    std::string p = (outside / "secret").native();
    auto r = fetch(p, opts);
    REQUIRE(!r);
    CHECK(r.error().message == refused("'" + p + "'"));
    auto u = fetch("file://" + p, opts);
    REQUIRE(!u);
    CHECK(u.error().message == refused("file://" + p));
    auto b = fetch_bytes(p, opts);
    REQUIRE(!b);
    CHECK(b.error().message == refused("'" + p + "'"));
    auto s = fetch((sibling / "x").native(), opts);
    REQUIRE(!s);
    CHECK(s.error().message == refused("'" + (sibling / "x").native() + "'"));
    CHECK(!fetch("/etc/passwd", opts));
  }

  SUBCASE("../ out of a prefix is refused") {
    std::string p = (allowed / ".." / "outside" / "secret").native();
    auto r = fetch(p, opts);
    REQUIRE(!r);
    CHECK(r.error().message == refused("'" + p + "'"));
    std::string uri = "file://" + allowed.native() + "/%2e%2e/outside/secret";
    auto u = fetch(uri, opts);
    REQUIRE(!u);
    CHECK(u.error().message == refused(uri));
  }

  SUBCASE("a symlink out of a prefix is refused, to a file or a directory") {
    std::string p = (allowed / "link-out").native();
    auto r = fetch(p, opts);
    REQUIRE(!r);
    CHECK(r.error().message == refused("'" + p + "'"));
    std::string d = (allowed / "dir-out" / "secret").native();
    auto rd = fetch("file://" + d, opts);
    REQUIRE(!rd);
    CHECK(rd.error().message == refused("file://" + d));
    auto b = fetch_bytes(p, opts);
    REQUIRE(!b);
    CHECK(b.error().message == refused("'" + p + "'"));
  }

  SUBCASE("missing files: the reason inside, a refusal outside (no probing)") {
    std::string in = (allowed / "missing").native();
    auto r = fetch(in, opts);
    REQUIRE(!r);
    CHECK(r.error().message == "'" + in + "': No such file or directory");
    std::string out = (outside / "missing").native();
    auto o = fetch(out, opts);
    REQUIRE(!o);
    CHECK(o.error().message == refused("'" + out + "'"));
    std::string via = (allowed / "dir-out" / "missing").native();
    auto v = fetch(via, opts);
    REQUIRE(!v);
    CHECK(v.error().message == refused("'" + via + "'"));
  }

  SUBCASE("directories and FIFOs inside are still refused as before") {
    auto d = fetch((allowed / "sub").native(), opts);
    REQUIRE(!d);
    CHECK(contains(d.error().message, "not a regular file (directory)"));
    fs::path fifo = allowed / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto f = fetch(fifo.native(), opts);
    REQUIRE(!f);
    CHECK(contains(f.error().message, "not a regular file (FIFO)"));
  }

  SUBCASE("several prefixes, one of them missing") {
    opts.allowed_file_prefixes = std::vector<fs::path>{root / "no-such-dir", outside};
    CHECK(fetch((outside / "secret").native(), opts).has_value());
    CHECK(!fetch((allowed / "eicar.com").native(), opts));
  }

  SUBCASE("an empty list allows no local files at all") {
    opts.allowed_file_prefixes = std::vector<fs::path>{};
    std::string p = (allowed / "eicar.com").native();
    auto r = fetch(p, opts);
    REQUIRE(!r);
    CHECK(r.error().message == "'" + p + "': local files are not allowed here");
    auto u = fetch("file://" + p, opts);
    REQUIRE(!u);
    CHECK(u.error().message == "file://" + p + ": file URIs are not allowed here");
    CHECK(fetch("data:,abc", opts).has_value()); // data: stays allowed
  }

  SUBCASE("nullopt allows any path, as before") {
    opts.allowed_file_prefixes.reset();
    CHECK(fetch((outside / "secret").native(), opts).has_value());
    auto l = fetch((allowed / "link-out").native(), opts);
    REQUIRE(l.has_value());
    CHECK(l->path == allowed / "link-out"); // used in place, as given
  }
}

namespace {

// A listening TCP socket on a loopback address that never accepts: a connection attempt would
// complete in the kernel and wait in the backlog, where a non-blocking accept() finds it.
class Listener {
public:
  explicit Listener(int family) {
    m_fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *in;
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      len = sizeof *in6;
    }
    m_ok = ::bind(m_fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 && ::listen(m_fd, 16) == 0 &&
           ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
    m_port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() { ::close(m_fd); }

  bool ok() const { return m_ok; } // false where the host has no IPv6 loopback
  unsigned port() const { return m_port; }
  // The number of connections that reached us (accepting and closing them).
  int connections() const {
    int n = 0;
    for (;;) {
      int c = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return n;
      }
      ::close(c);
      ++n;
    }
  }

private:
  int m_fd = -1;
  bool m_ok = false;
  unsigned m_port = 0;
};

} // namespace

TEST_CASE("artifact::fetch allow_private_networks") {
  using namespace pss::artifact;
  ::setenv("no_proxy", "127.0.0.1", 0);
  auto work = pss::TempDir::create(pss::temp_base_dir(), "pss-test-").value();
  FetchOptions opts;
  opts.temp_dir = work.path();
  opts.connect_timeout = std::chrono::seconds(2);
  opts.total_timeout = std::chrono::seconds(10);
  opts.allow_private_networks = false;
  const std::string why = " (fetching from private networks is not allowed here)";
  Listener listener(AF_INET);
  REQUIRE(listener.ok());
  std::string port = std::to_string(listener.port());

  SUBCASE("a loopback address is refused before connecting") {
    std::string url = "http://127.0.0.1:" + port + "/x";
    auto r = fetch(url, opts);
    REQUIRE(!r);
    CHECK(r.error().message == url + ": refused: 127.0.0.1 is a loopback address" + why);
    auto b = fetch_bytes(url, opts);
    REQUIRE(!b);
    CHECK(b.error().message == url + ": refused: 127.0.0.1 is a loopback address" + why);
    CHECK(listener.connections() == 0);
    CHECK(count_entries(work.path()) == 0);
  }

  SUBCASE("names that resolve to loopback, and IPv4-mapped forms, are refused") {
    std::string url = "http://localhost:" + port + "/x";
    auto r = fetch(url, opts);
    REQUIRE(!r);
    CHECK(contains(r.error().message, url + ": refused: "));
    CHECK(contains(r.error().message, " is a loopback address" + why));
    std::string mapped = "http://[::ffff:127.0.0.1]:" + port + "/x";
    auto m = fetch(mapped, opts);
    REQUIRE(!m);
    CHECK(m.error().message == mapped + ": refused: ::ffff:127.0.0.1 is a loopback address" + why);
    CHECK(listener.connections() == 0);
  }

  SUBCASE("IPv6 loopback") {
    Listener six(AF_INET6);
    if (!six.ok()) {
      MESSAGE("no IPv6 loopback here: skipped");
      return;
    }
    std::string url = "http://[::1]:" + std::to_string(six.port()) + "/x";
    auto r = fetch(url, opts);
    REQUIRE(!r);
    CHECK(r.error().message == url + ": refused: ::1 is a loopback address" + why);
    CHECK(six.connections() == 0);
  }

  SUBCASE("private, link-local and other addresses are refused without a packet") {
    // Nothing is sent: the refusal comes before a socket exists. An attempt would end in a
    // connect error or timeout instead, never in this refusal.
    opts.connect_timeout = std::chrono::seconds(5);
    struct Case {
      const char* host;
      const char* text;
    };
    for (const Case& c : {Case{"10.255.255.1", "10.255.255.1 is a private address"},
                          Case{"172.16.0.1", "172.16.0.1 is a private address"},
                          Case{"192.168.0.1", "192.168.0.1 is a private address"},
                          Case{"169.254.169.254", "169.254.169.254 is a link-local address"},
                          Case{"100.64.0.1", "100.64.0.1 is a shared (carrier-grade NAT) address"},
                          Case{"0.0.0.0", "0.0.0.0 is an unspecified address"},
                          Case{"[fd00::1]", "fd00::1 is a private address"},
                          Case{"[::ffff:10.0.0.1]", "::ffff:10.0.0.1 is a private address"}}) {
      std::string url = std::string("http://") + c.host + "/latest/meta-data/";
      auto r = fetch(url, opts);
      REQUIRE(!r);
      CHECK(r.error().message == url + ": refused: " + c.text + why);
    }
  }

  SUBCASE("a proxy from the environment is not used") {
    // Were it used, libcurl would connect to the proxy (a reserved address) instead.
    const char* saved = std::getenv("http_proxy");
    std::optional<std::string> old_proxy;
    if (saved != nullptr) {
      old_proxy = saved;
    }
    ::setenv("http_proxy", "http://192.0.2.1:3128", 1);
    std::string url = "http://localhost:" + port + "/x";
    auto r = fetch(url, opts);
    if (old_proxy) {
      ::setenv("http_proxy", old_proxy->c_str(), 1);
    } else {
      ::unsetenv("http_proxy");
    }
    REQUIRE(!r);
    CHECK(contains(r.error().message, " is a loopback address" + why));
    CHECK(listener.connections() == 0);
  }

  SUBCASE("allowed, the same fetches proceed as before") {
    opts.allow_private_networks = true;
    TestHttpServer server;
    auto a = fetch(server.url("/eicar"), opts);
    REQUIRE(a.has_value());
    CHECK(a->sha256 == k_eicar_sha256);
    // A listener that never answers: the connection is made (and then times out).
    opts.total_timeout = std::chrono::seconds(1);
    auto r = fetch("http://127.0.0.1:" + port + "/x", opts);
    REQUIRE(!r);
    CHECK_FALSE(contains(r.error().message, "refused"));
    CHECK(listener.connections() == 1);
  }
}

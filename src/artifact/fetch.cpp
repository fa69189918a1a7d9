#include "artifact/fetch.hpp"

#include "artifact/address.hpp"
#include "artifact/curl_guard.hpp"
#include "artifact/magic.hpp"
#include "artifact/uri.hpp"
#include "pss_config.h"
#include "util/posix.hpp"
#include "util/sha256.hpp"
#include "util/size.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits>
#include <memory>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace pss::artifact {

namespace {

namespace fs = std::filesystem;

Error too_big(const std::string& label, std::uint64_t max) {
  return make_error(label + ": larger than the " + format_size(max) + " limit");
}

Error with_label(const std::string& label, const Error& e) {
  return make_error(label + ": " + e.message);
}

Error errno_with_label(const std::string& label) {
  int err = errno;
  return make_error(label + ": " + std::strerror(err));
}

// A URL for messages: as is when it is plain printable ASCII, quoted otherwise.
std::string url_label(std::string_view url) {
  for (char ch : url) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) {
      return quote(url);
    }
  }
  return std::string(url);
}

// How an input is named in messages (data: URIs can be megabytes long).
std::string label_for(const std::string& input, InputKind kind) {
  switch (kind) {
  case InputKind::path:
    return quote(input);
  case InputKind::stdin_:
    return "stdin";
  case InputKind::data_uri:
    return "data: URI";
  case InputKind::file_uri:
  case InputKind::http_uri:
    return url_label(input);
  }
  return quote(input);
}

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "directory";
  }
  if (S_ISFIFO(mode)) {
    return "FIFO";
  }
  if (S_ISCHR(mode)) {
    return "character device";
  }
  if (S_ISBLK(mode)) {
    return "block device";
  }
  if (S_ISSOCK(mode)) {
    return "socket";
  }
  return "unknown file type";
}

fs::path temp_dir_of(const FetchOptions& opts) {
  return opts.temp_dir.empty() ? temp_base_dir() : opts.temp_dir;
}

// Receives fetched bytes: appends them to a temp file or a string (or neither, only hashing),
// counts and hashes them, and refuses to go past the size limit.
class Collector {
public:
  Collector(std::uint64_t max, TempFile* file, std::string* mem)
      : m_max(max), m_file(file), m_mem(mem) {}

  // False when the transfer must stop: too big (too_big()) or a write error (error()).
  bool add(std::string_view chunk) {
    if (chunk.size() > m_max - m_size) {
      m_too_big = true;
      return false;
    }
    if (m_file != nullptr) {
      auto r = m_file->write(chunk);
      if (!r) {
        m_error = r.error();
        return false;
      }
    }
    if (m_mem != nullptr) {
      m_mem->append(chunk);
    }
    m_hash.update(chunk);
    m_size += chunk.size();
    return true;
  }

  // The Error for a stopped transfer of `label`.
  Error failure(const std::string& label) const {
    return m_too_big ? too_big(label, m_max) : with_label(label, m_error);
  }
  bool too_big_seen() const { return m_too_big; }
  std::uint64_t size() const { return m_size; }
  std::string digest() { return m_hash.hex_digest(); }

private:
  std::uint64_t m_max;
  TempFile* m_file;
  std::string* m_mem;
  Sha256 m_hash;
  std::uint64_t m_size = 0;
  bool m_too_big = false;
  Error m_error;
};

// Reads `fd` to its end into `c`.
Result<void> read_all(int fd, Collector& c, const std::string& label) {
  std::array<char, 1 << 16> buf{};
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      return make_error(label + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) {
      return {};
    }
    if (!c.add(std::string_view(buf.data(), static_cast<std::size_t>(n)))) {
      return c.failure(label);
    }
  }
}

// Opens a local path for reading; it must be a regular file (after following symlinks) no
// larger than `max`. Never blocks on FIFOs or devices: their type is refused before open().
Result<UniqueFd> open_regular(const std::string& label, const fs::path& path, std::uint64_t max) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return errno_with_label(label);
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(label + ": not a regular file (" + file_type_name(st.st_mode) + ")");
  }
  // O_NONBLOCK: should the path be swapped for a FIFO after stat(), open() still returns.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    return errno_with_label(label);
  }
  if (::fstat(fd.get(), &st) != 0) {
    return errno_with_label(label);
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(label + ": not a regular file (" + file_type_name(st.st_mode) + ")");
  }
  if (static_cast<std::uint64_t>(st.st_size) > max) {
    return too_big(label, max);
  }
  return fd;
}

// The local path of a path or file:// input, with the allow_file_uris rule (and an empty
// allowed_file_prefixes, which means the same).
Result<fs::path> local_path(const std::string& input, InputKind kind, const std::string& label,
                            const FetchOptions& opts) {
  bool allowed =
      opts.allow_file_uris && !(opts.allowed_file_prefixes && opts.allowed_file_prefixes->empty());
  if (kind == InputKind::path) {
    if (!allowed) {
      return make_error(label + ": local files are not allowed here");
    }
    return fs::path(input);
  }
  if (!allowed) {
    return make_error(label + ": file URIs are not allowed here");
  }
  auto p = file_uri_path(input);
  if (!p) {
    return p.error(); // already names the URI
  }
  return fs::path(std::move(*p));
}

// ---- allowed_file_prefixes ----

// realpath(3): absolute, no symlinks, no "." or ".." components; nullopt (errno set) if a
// component is missing or unreadable.
std::optional<fs::path> real_path(const fs::path& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) {
    return std::nullopt;
  }
  fs::path out(r);
  std::free(r); // realpath(3) allocates with malloc
  return out;
}

// True if `path` is `dir` or lies below it, comparing whole components: /data-x is not in /data.
bool is_inside(const fs::path& path, const fs::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end();
}

class PrefixPolicy {
public:
  // Prefixes are canonicalized now; one that does not exist allows nothing.
  explicit PrefixPolicy(const std::vector<fs::path>& prefixes) {
    for (const fs::path& prefix : prefixes) {
      if (auto r = real_path(prefix)) {
        m_dirs.push_back(std::move(*r));
      }
    }
  }

  bool allows(const fs::path& canonical) const {
    return std::any_of(m_dirs.begin(), m_dirs.end(),
                       [&](const fs::path& dir) { return is_inside(canonical, dir); });
  }

  // For a path that cannot be resolved: would it be inside if it existed? (Its existing
  // directories resolved, the rest taken as written.) Only then does the error say why
  // (ENOENT, EACCES), so that the rest of the file system cannot be probed through us.
  bool might_allow(const fs::path& path) const {
    std::error_code ec;
    fs::path weak = fs::weakly_canonical(path, ec);
    return !ec && allows(weak);
  }

private:
  std::vector<fs::path> m_dirs;
};

Error outside_prefixes(const std::string& label) {
  return make_error(label + ": refused: outside the directories allowed for local files");
}

// The path the kernel has for an open file; nullopt without /proc (or for a path too long).
std::optional<fs::path> opened_path(int fd) {
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  std::array<char, PATH_MAX + 1> buf{};
  ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= buf.size()) { // none, or maybe truncated
    return std::nullopt;
  }
  return fs::path(std::string(buf.data(), static_cast<std::size_t>(n)));
}

// True if `fd` is the file that `path` names now (device and inode).
bool same_file(int fd, const fs::path& path) {
  struct stat a {};
  struct stat b {};
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

struct LocalFile {
  fs::path path; // as given, or canonical when allowed_file_prefixes applies
  UniqueFd fd;
  bool canonical = false;
};

// Opens the local file of a path or file:// input with the allow_file_uris and
// allowed_file_prefixes rules.
Result<LocalFile> open_local(const std::string& input, InputKind kind, const std::string& label,
                             const FetchOptions& opts) {
  fs::path p = PSS_TRY(local_path(input, kind, label, opts));
  if (!opts.allowed_file_prefixes) {
    UniqueFd fd = PSS_TRY(open_regular(label, p, opts.max_size));
    return LocalFile{std::move(p), std::move(fd), false};
  }
  PrefixPolicy policy(*opts.allowed_file_prefixes);
  auto canonical = real_path(p);
  if (!canonical) {
    int err = errno;
    if (!policy.might_allow(p)) {
      return outside_prefixes(label);
    }
    return make_error(label + ": " + std::strerror(err));
  }
  if (!policy.allows(*canonical)) {
    return outside_prefixes(label);
  }
  UniqueFd fd = PSS_TRY(open_regular(label, *canonical, opts.max_size));
  // A directory on the way may have been swapped for a symlink since realpath(): check the
  // file that was opened. /proc names it exactly; without /proc, it must at least still be
  // the file at the canonical path.
  if (auto opened = opened_path(fd.get())) {
    if (!policy.allows(*opened)) {
      return outside_prefixes(label);
    }
  } else if (!same_file(fd.get(), *canonical)) {
    return outside_prefixes(label);
  }
  return LocalFile{std::move(*canonical), std::move(fd), true};
}

// ---- libcurl ----

std::size_t curl_write(char* ptr, std::size_t size, std::size_t nmemb, void* userdata) {
  auto* c = static_cast<Collector*>(userdata);
  std::size_t n = size * nmemb;
  return c->add(std::string_view(ptr, n)) ? n : 0; // a short count aborts the transfer
}

long to_ms(std::chrono::seconds s) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(s).count());
}

// Downloads `url` into `c`.
Result<void> http_get(const std::string& url, const std::string& label, Collector& c,
                      const FetchOptions& opts) {
  if (auto r = curl_global_init_once(); !r) {
    return r.error();
  }
  CurlHandle h(curl_easy_init());
  if (!h) {
    return make_error(label + ": libcurl: cannot create a handle");
  }
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  CURL* e = h.get();
  CURLcode rc = CURLE_OK;
  auto check = [&rc](CURLcode r) {
    if (rc == CURLE_OK) {
      rc = r;
    }
  };
  check(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf.data()));
  check(curl_easy_setopt(e, CURLOPT_URL, url.c_str()));
  check(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
  check(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
  check(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  check(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L));
  check(curl_easy_setopt(e, CURLOPT_MAXREDIRS, opts.max_redirects));
  check(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(opts.connect_timeout)));
  check(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, to_ms(opts.total_timeout)));
  check(curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L));
  check(curl_easy_setopt(e, CURLOPT_USERAGENT, "pssupervise/" PSS_VERSION));
  if (opts.max_size <= static_cast<std::uint64_t>(std::numeric_limits<curl_off_t>::max())) {
    check(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(opts.max_size)));
  }
  check(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &curl_write));
  check(curl_easy_setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(&c)));
  if (opts.cancel) {
    check(curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L));
    check(curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &curl_abort_when_set));
    check(curl_easy_setopt(e, CURLOPT_XFERINFODATA,
                           const_cast<void*>(static_cast<const void*>(opts.cancel.get()))));
  }
  AddressGuard guard;
  if (!opts.allow_private_networks) {
    check(guard.install(e));
  }
  if (rc != CURLE_OK) {
    return make_error(label + ": libcurl: cannot set up the transfer: " + curl_easy_strerror(rc));
  }

  rc = curl_easy_perform(e);
  if (rc == CURLE_ABORTED_BY_CALLBACK && opts.cancel && opts.cancel->load()) {
    return make_error(label + ": cancelled (the service is stopping)");
  }
  if (guard.refused_transfer(rc)) {
    return make_error(label + ": refused: " + guard.refused +
                      " (fetching from private networks is not allowed here)");
  }
  switch (rc) {
  case CURLE_OK:
    return {};
  case CURLE_WRITE_ERROR:
    return c.failure(label);
  case CURLE_FILESIZE_EXCEEDED:
    return too_big(label, opts.max_size);
  case CURLE_HTTP_RETURNED_ERROR: {
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    return make_error(label + ": HTTP " + std::to_string(status));
  }
  case CURLE_TOO_MANY_REDIRECTS:
    return make_error(label + ": too many redirects (more than " +
                      std::to_string(opts.max_redirects) + ")");
  default:
    break;
  }
  if (c.too_big_seen()) {
    return too_big(label, opts.max_size);
  }
  const char* why = errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(rc);
  return make_error(label + ": " + why);
}

// ---- Artifacts ----

// Fills a new temp file with `fill(collector)` and identifies it.
template <typename Fill>
Result<Artifact> fetch_to_temp(const std::string& input, const std::string& label,
                               const FetchOptions& opts, Fill&& fill) {
  auto temp = TempFile::create(temp_dir_of(opts), "artifact-");
  if (!temp) {
    return with_label(label, temp.error());
  }
  Collector c(opts.max_size, &*temp, nullptr);
  auto filled = fill(c);
  if (!filled) {
    return filled.error(); // the TempFile is destroyed here: its bytes are unlinked
  }
  temp->close();
  auto mime = opts.identify ? mimetype_of_file(temp->path()) : Result<std::string>(std::string());
  if (!mime) {
    return with_label(label, mime.error());
  }
  Artifact a;
  a.name = input;
  a.path = temp->path();
  a.size = c.size();
  a.sha256 = c.digest();
  a.mimetype = std::move(*mime);
  a.temp.emplace(std::move(*temp));
  return a;
}

Result<Artifact> fetch_local(const std::string& input, const std::string& label, LocalFile file,
                             const FetchOptions& opts) {
  Collector c(opts.max_size, nullptr, nullptr);
  std::uint64_t size = 0;
  if (opts.digest) {
    if (auto r = read_all(file.fd.get(), c, label); !r) {
      return r.error();
    }
    size = c.size();
  } else {
    struct stat st {};
    if (::fstat(file.fd.get(), &st) != 0) {
      return errno_with_label(label);
    }
    size = static_cast<std::uint64_t>(st.st_size);
  }
  file.fd.reset();
  Artifact a;
  a.name = input;
  if (file.canonical) {
    a.path = std::move(file.path);
  } else {
    std::error_code ec;
    fs::path abs = fs::absolute(file.path, ec);
    a.path = ec ? file.path : abs;
  }
  auto mime = opts.identify ? mimetype_of_file(a.path) : Result<std::string>(std::string());
  if (!mime) {
    return with_label(label, mime.error());
  }
  a.size = size;
  if (opts.digest) {
    a.sha256 = c.digest();
  }
  a.mimetype = std::move(*mime);
  return a;
}

} // namespace

Result<Artifact> fetch(const std::string& input, const FetchOptions& opts) {
  InputKind kind = classify_input(input);
  std::string label = label_for(input, kind);
  switch (kind) {
  case InputKind::path:
  case InputKind::file_uri: {
    LocalFile file = PSS_TRY(open_local(input, kind, label, opts));
    return fetch_local(input, label, std::move(file), opts);
  }
  case InputKind::stdin_:
    return fetch_to_temp(input, label, opts,
                         [&](Collector& c) { return read_all(STDIN_FILENO, c, label); });
  case InputKind::data_uri:
    // Decoded straight into the temp file: a large artifact is never held whole.
    return fetch_to_temp(input, label, opts, [&](Collector& c) -> Result<void> {
      auto sink = [&](std::string_view piece) -> Result<void> {
        if (!c.add(piece)) {
          return c.failure(label);
        }
        return {};
      };
      auto n = decode_data_uri(input, opts.max_size, sink);
      if (!n) {
        return n.error(); // "data: URI: ..."
      }
      return {};
    });
  case InputKind::http_uri:
    return fetch_to_temp(input, label, opts,
                         [&](Collector& c) { return http_get(input, label, c, opts); });
  }
  return make_error(label + ": unsupported input");
}

Result<std::string> fetch_bytes(const std::string& uri, const FetchOptions& opts) {
  InputKind kind = classify_input(uri);
  std::string label = label_for(uri, kind);
  std::string bytes;
  Collector c(opts.max_size, nullptr, &bytes);
  switch (kind) {
  case InputKind::path:
  case InputKind::file_uri: {
    LocalFile file = PSS_TRY(open_local(uri, kind, label, opts));
    // Its size is known (and within the limit): one allocation, not a doubling string's
    // several copies (a bounty file with a large data: artifact is tens of MB).
    if (struct stat st{}; ::fstat(file.fd.get(), &st) == 0 && st.st_size > 0) {
      bytes.reserve(static_cast<std::size_t>(st.st_size));
    }
    if (auto r = read_all(file.fd.get(), c, label); !r) {
      return r.error();
    }
    return bytes;
  }
  case InputKind::stdin_:
    if (auto r = read_all(STDIN_FILENO, c, label); !r) {
      return r.error();
    }
    return bytes;
  case InputKind::data_uri: {
    auto n = decode_data_uri(uri, opts.max_size, [&](std::string_view piece) -> Result<void> {
      bytes.append(piece);
      return {};
    });
    if (!n) {
      return n.error();
    }
    return bytes;
  }
  case InputKind::http_uri:
    if (auto r = http_get(uri, label, c, opts); !r) {
      return r.error();
    }
    return bytes;
  }
  return make_error(label + ": unsupported input");
}

} // namespace pss::artifact

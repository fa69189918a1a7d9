#include "artifact/magic.hpp"

#include "util/posix.hpp"

#include <magic.h>
#include <memory>
#include <string>

namespace pss::artifact {

namespace {

struct MagicCloser {
  void operator()(magic_set* m) const { magic_close(m); }
};
// Owns a libmagic handle (magic_t is a pointer to struct magic_set).
using MagicHandle = std::unique_ptr<magic_set, MagicCloser>;

std::string magic_error_text(magic_t m) {
  const char* e = magic_error(m);
  return e != nullptr ? std::string(e) : std::string("unknown libmagic error");
}

// The calling thread's handle, opened and loaded on first use. A failed load is not cached,
// so each call reports it again.
Result<magic_t> thread_handle() {
  thread_local MagicHandle handle;
  if (handle) {
    return handle.get();
  }
  // Defaults (archives and compressed files report as such) plus a plain mimetype, and
  // errors (unreadable file, ...) as errors rather than as a description.
  MagicHandle h(magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR));
  if (!h) {
    return errno_error("libmagic: cannot open a handle");
  }
  if (magic_load(h.get(), nullptr) != 0) {
    return make_error("libmagic: cannot load the database: " + magic_error_text(h.get()));
  }
  handle = std::move(h);
  return handle.get();
}

} // namespace

Result<std::string> mimetype_of_file(const std::filesystem::path& path) {
  magic_t m = PSS_TRY(thread_handle());
  const char* type = magic_file(m, path.c_str());
  if (type == nullptr) {
    return make_error("libmagic: " + quote(path.native()) + ": " + magic_error_text(m));
  }
  return std::string(type);
}

Result<std::string> mimetype_of_buffer(std::string_view bytes) {
  magic_t m = PSS_TRY(thread_handle());
  const char* type = magic_buffer(m, bytes.data(), bytes.size());
  if (type == nullptr) {
    return make_error("libmagic: " + magic_error_text(m));
  }
  return std::string(type);
}

} // namespace pss::artifact

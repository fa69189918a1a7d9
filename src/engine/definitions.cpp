#include "engine/definitions.hpp"

#include "env/expand.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"
#include "util/sha256.hpp"

#include <algorithm>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace pss::engine {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_shown_digits = 12;

Result<void> add_file(Sha256& hash, const fs::path& path, const std::string& name) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return errno_error("cannot read definitions file", path);
  }
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return errno_error("cannot read definitions file", path);
    }
    if (n == 0) {
      break;
    }
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  hash.update(name);
  hash.update(std::string_view("\0", 1));
  hash.update(std::to_string(bytes.size()));
  hash.update(std::string_view("\0", 1));
  hash.update(bytes);
  return {};
}

} // namespace

Result<std::string> definitions_digest(const Manifest& manifest, const env::EngineEnv& env) {
  Sha256 hash;
  for (const auto& tmpl : manifest.definitions) {
    auto expanded = env::expand(tmpl, [&env](std::string_view n) { return env.lookup(n); });
    if (!expanded) {
      return make_error(manifest.name + ": definitions.files: " + expanded.error().message);
    }
    fs::path root(*expanded);
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      if (!fs::exists(root, ec)) {
        return make_error(manifest.name + ": definitions file " + root.native() +
                          " does not exist");
      }
      PSS_TRY_VOID(add_file(hash, root, root.filename().string()));
      continue;
    }
    std::vector<std::pair<std::string, fs::path>> files;
    for (auto it = fs::recursive_directory_iterator(
             root, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::end(it); it.increment(ec)) {
      if (it->is_regular_file(ec)) {
        // Lexically: a linked folder counts by the name of the link, not where it points.
        files.emplace_back(it->path().lexically_relative(root).string(), it->path());
      }
    }
    if (ec) {
      return make_error(manifest.name + ": cannot read the definitions folder " + root.native() +
                        ": " + ec.message());
    }
    std::sort(files.begin(), files.end());
    for (const auto& [name, path] : files) {
      PSS_TRY_VOID(add_file(hash, path, name));
    }
  }
  return "custom:" + hash.hex_digest().substr(0, k_shown_digits);
}

void add_definitions_digest(EngineVersions& v, const Manifest& manifest,
                            const env::EngineEnv& env) {
  if (v.definitions || manifest.definitions.empty()) {
    return;
  }
  auto digest = definitions_digest(manifest, env);
  if (!digest) {
    log::get(manifest.name)->warn("no definitions version: {}", digest.error().message);
    return;
  }
  v.definitions = *digest;
  v.note = "definitions version: a digest of the definition files (the engine reports none)";
}

} // namespace pss::engine

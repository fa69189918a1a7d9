// One factory for the backends, by name: what a front end's --backend selects. The front end
// then holds a Backend& and never asks which one it is.
#pragma once

#include "backend/backend.hpp"
#include "backend/cached.hpp"
#include "backend/celery.hpp"
#include "backend/local.hpp"
#include "backend/process.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pss::backend {

inline constexpr std::string_view k_backend_names[] = {"local", "process", "celery"};

struct BackendOptions {
  std::string name = "local";
  std::vector<std::string> engines;
  std::filesystem::path engines_dir;
  LocalOptions local;     // `local` (and what `process` reads stdin with: local.fetch)
  ProcessOptions process; // `process`: its engines and fetch options are set from the above
  CeleryOptions celery;   // `celery`: likewise
  // The result cache: around `local`; `process` hands it to its workers (they share the
  // store); `celery` has none here (the workers keep theirs). nullopt: no cache.
  std::optional<CacheOptions> cache;
};

// Throws pss::Fatal for an unknown name or engines that cannot be loaded (`local`).
std::unique_ptr<Backend> make_backend(BackendOptions opts, boost::asio::any_io_executor ex);

} // namespace pss::backend

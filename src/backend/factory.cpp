#include "backend/factory.hpp"

#include "engine/engine_set.hpp"
#include "util/error.hpp"

#include <algorithm>

namespace pss::backend {

std::unique_ptr<Backend> make_backend(BackendOptions opts, boost::asio::any_io_executor ex) {
  if (opts.name == "local") {
    auto local = std::make_unique<LocalBackend>(
        opts.local, std::make_unique<engine::EngineSet>(opts.engines, opts.engines_dir, ex));
    if (opts.cache) {
      opts.cache->concurrency = std::max<std::size_t>(1, opts.local.concurrency);
      if (auto store = open_cache_store(*opts.cache)) {
        return std::make_unique<CachedBackend>(std::move(local), std::move(store), *opts.cache,
                                               cache_fetch_options(opts.local));
      }
    }
    return local;
  }
  if (opts.name == "process") {
    opts.process.engines = opts.engines;
    opts.process.engines_dir = opts.engines_dir;
    opts.process.fetch = opts.local.fetch;
    return std::make_unique<ProcessBackend>(std::move(opts.process));
  }
  if (opts.name == "celery") {
    opts.celery.engines = opts.engines;
    opts.celery.engines_dir = opts.engines_dir;
    opts.celery.fetch = opts.local.fetch;
    return std::make_unique<CeleryBackend>(std::move(opts.celery));
  }
  throw Fatal("unknown backend '" + opts.name + "' (known: local, process, celery)");
}

} // namespace pss::backend

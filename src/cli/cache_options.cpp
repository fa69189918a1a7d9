#include "cli/cache_options.hpp"

#include <charconv>

namespace pss::cli {

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  std::string_view digits = text;
  long long unit = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
    case 's':
      unit = 1;
      digits.remove_suffix(1);
      break;
    case 'm':
      unit = 60;
      digits.remove_suffix(1);
      break;
    case 'h':
      unit = 3600;
      digits.remove_suffix(1);
      break;
    case 'd':
      unit = 86400;
      digits.remove_suffix(1);
      break;
    default:
      break;
    }
  }
  long long n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || n < 1 ||
      n > 100LL * 365 * 86400 / unit) {
    return make_error("'" + std::string(text) +
                      "' is not a duration (a positive number, optionally followed by s, m, h "
                      "or d; e.g. 7d)");
  }
  return std::chrono::seconds(n * unit);
}

Result<std::optional<backend::CacheOptions>> cache_options(const GlobalOptions& global) {
  if (global.cache == "off") {
    return std::optional<backend::CacheOptions>{};
  }
  auto ttl = parse_duration(global.cache_ttl);
  if (!ttl) {
    return make_error("--cache-ttl: " + ttl.error().message);
  }
  return std::optional<backend::CacheOptions>(
      backend::CacheOptions{global.cache, *ttl, global.rescan});
}

std::vector<std::string> cache_argv(const GlobalOptions& global) {
  std::vector<std::string> out{
      "--cache", global.cache.empty() ? backend::default_cache_path().string() : global.cache,
      "--cache-ttl", global.cache_ttl};
  if (global.rescan) {
    out.emplace_back("--rescan");
  }
  return out;
}

} // namespace pss::cli

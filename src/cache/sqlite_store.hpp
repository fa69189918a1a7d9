// The embedded cache: one SQLite database per host, in WAL mode so that several processes (the
// process backend's workers, several services) read and write it at once. A file that is not a
// database, or is corrupt, is set aside (renamed "<name>.corrupt-<unix time>") with one warning
// and a new one is made; a full disk or a read-only file stops the writes (one warning a minute),
// never the scans.
#pragma once

#include "cache/store.hpp"
#include "util/error.hpp"

#include <filesystem>
#include <memory>

namespace pss::cache {

class SqliteStore final : public Store {
public:
  // Opens or creates the database (and its folder). Error only when no database can be had at
  // all (the folder cannot be created, a new file cannot be made).
  static Result<std::unique_ptr<SqliteStore>> open(const std::filesystem::path& path);
  ~SqliteStore() override;

  std::optional<Entry> get(const std::string& key) override;
  void put(const std::string& key, const std::string& value, std::chrono::seconds ttl) override;
  std::string where() const override;

  // Writes what put() keeps back (up to 64 answers or 200 ms: one transaction for many);
  // also done at destruction.
  void flush();
  // Entries removed because they expired (done at open, and every 10,000 writes).
  std::size_t purge_expired();

  struct Impl;

private:
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace pss::cache

#include "cache/sqlite_store.hpp"

#include "util/log.hpp"

#include <ctime>
#include <mutex>
#include <sqlite3.h>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace pss::cache {

namespace fs = std::filesystem;

namespace {

// "PSSC": a database of ours. Another program's SQLite file at our path is set aside too.
constexpr int k_application_id = 0x50535343;
constexpr std::size_t k_purge_every = 10000; // writes
constexpr auto k_warn_every = std::chrono::minutes(1);
constexpr std::size_t k_batch = 64; // writes per transaction
constexpr auto k_batch_age = std::chrono::milliseconds(200);
// Opening while another process holds the lock: 50 x 100 ms at most (on top of SQLite's own
// busy wait), once, when the command starts.
constexpr int k_open_attempts = 50;
constexpr auto k_open_retry = std::chrono::milliseconds(100);

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

bool is_corruption(int rc) {
  rc &= 0xff;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

} // namespace

struct SqliteStore::Impl {
  fs::path path;
  sqlite3* db = nullptr;
  sqlite3_stmt* get = nullptr;
  sqlite3_stmt* put = nullptr;
  ino_t inode = 0; // of the file we opened: another process may have set it aside already
  std::size_t writes = 0;
  std::chrono::steady_clock::time_point last_warning{};
  bool warned_once = false;
  std::mutex mutex; // one connection; statements are not for two threads at once
  // Writes wait here and go in one transaction: a commit per answer would cost more than the
  // lookup saves on a miss. Read by get() first; written at k_batch entries, k_batch_age, or
  // the end.
  struct Pending {
    std::string key, value;
    std::int64_t stored_at, expires_at;
  };
  std::vector<Pending> pending;
  std::chrono::steady_clock::time_point pending_since;

  // Writes what is pending; returns the number of writes so far (0 when nothing was written).
  std::size_t flush() {
    if (pending.empty() || !db) {
      pending.clear();
      return 0;
    }
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (const auto& p : pending) {
      if (rc != SQLITE_OK) {
        break;
      }
      sqlite3_bind_text(put, 1, p.key.data(), static_cast<int>(p.key.size()), SQLITE_STATIC);
      sqlite3_bind_text(put, 2, p.value.data(), static_cast<int>(p.value.size()), SQLITE_STATIC);
      sqlite3_bind_int64(put, 3, p.stored_at);
      sqlite3_bind_int64(put, 4, p.expires_at);
      rc = sqlite3_step(put);
      rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
      sqlite3_reset(put);
      sqlite3_clear_bindings(put);
    }
    if (rc == SQLITE_OK) {
      rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
    const std::size_t n = pending.size();
    pending.clear();
    if (rc != SQLITE_OK) {
      const std::string why = message(rc);
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      if (is_corruption(rc)) {
        recover(rc);
      } else {
        warn("cannot store answers: " + why);
      }
      return 0;
    }
    writes += n;
    return writes;
  }

  ~Impl() { close(); }

  void close() {
    sqlite3_finalize(get);
    sqlite3_finalize(put);
    sqlite3_close_v2(db);
    get = put = nullptr;
    db = nullptr;
  }

  std::string message(int rc) const {
    return db ? std::string(sqlite3_errmsg(db)) : std::string(sqlite3_errstr(rc));
  }

  // Rate-limited: a full disk would otherwise log once per scan.
  void warn(const std::string& what) {
    const auto now = std::chrono::steady_clock::now();
    if (warned_once && now - last_warning < k_warn_every) {
      return;
    }
    warned_once = true;
    last_warning = now;
    log::get("cache")->warn("result cache {}: {} (scans go on)", path.native(), what);
  }

  // 0 when the database is ours and ready; else the SQLite code of the failure.
  int try_open(std::string& why) {
    // The file this connection is about: another process may replace it meanwhile.
    inode = inode_of(path);
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      why = message(rc);
      return rc;
    }
    sqlite3_busy_timeout(db, 5000); // another process writing: wait, do not fail
    auto exec = [&](const char* sql) {
      char* err = nullptr;
      const int r = sqlite3_exec(db, sql, nullptr, nullptr, &err);
      if (r != SQLITE_OK) {
        why = err ? err : sqlite3_errstr(r);
        sqlite3_free(err);
      }
      return r;
    };
    auto rollback = [&] { sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); };
    // WAL first: it reads the header, so a file that is not a database fails here; and it
    // cannot change inside the transaction below.
    if ((rc = exec("PRAGMA journal_mode=WAL")) != SQLITE_OK ||
        (rc = exec("PRAGMA synchronous=NORMAL")) != SQLITE_OK) {
      return rc;
    }
    // Checked and created under the write lock: two processes opening a new cache at once
    // must not see each other's half-made schema (one would set the other's file aside).
    if ((rc = exec("BEGIN IMMEDIATE")) != SQLITE_OK) {
      return rc;
    }
    int app_id = 0;
    int tables = 0;
    sqlite3_stmt* st = nullptr;
    rc = sqlite3_prepare_v2(
        db,
        "SELECT application_id, (SELECT count(*) FROM sqlite_master) FROM pragma_application_id",
        -1, &st, nullptr);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      app_id = sqlite3_column_int(st, 0);
      tables = sqlite3_column_int(st, 1);
      rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
      why = message(rc);
      rollback();
      return rc;
    }
    if (app_id != k_application_id && (app_id != 0 || tables != 0)) {
      rollback();
      why = "not a pssupervise result cache (another program's database)";
      return SQLITE_NOTADB;
    }
    if ((rc = exec(("PRAGMA application_id=" + std::to_string(k_application_id)).c_str())) !=
            SQLITE_OK ||
        (rc = exec("CREATE TABLE IF NOT EXISTS results(key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                   " stored_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)")) != SQLITE_OK ||
        (rc = exec("CREATE INDEX IF NOT EXISTS results_expiry ON results(expires_at)")) !=
            SQLITE_OK ||
        (rc = exec("COMMIT")) != SQLITE_OK) {
      rollback();
      return rc;
    }
    if ((rc = sqlite3_prepare_v2(db,
                                 "SELECT value, stored_at FROM results WHERE key = ?1 AND "
                                 "expires_at > ?2",
                                 -1, &get, nullptr)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(db,
                                 "INSERT OR REPLACE INTO results(key, value, stored_at, "
                                 "expires_at) VALUES (?1, ?2, ?3, ?4)",
                                 -1, &put, nullptr)) != SQLITE_OK) {
      why = message(rc);
      return rc;
    }
    return SQLITE_OK;
  }

  // The file at `path` is not a usable database: renamed aside (with its WAL and shared
  // memory), unless another process did so already, and a new one made.
  Result<void> set_aside_and_reopen(const std::string& why) {
    close();
    const ino_t now_there = inode_of(path);
    if (now_there != 0 && (inode == 0 || now_there == inode)) {
      const fs::path aside = path.native() + ".corrupt-" + std::to_string(unix_now());
      std::error_code ec;
      fs::rename(path, aside, ec);
      if (ec) {
        return make_error("result cache " + path.native() + " is unusable (" + why +
                          ") and cannot be set aside: " + ec.message());
      }
      fs::remove(path.native() + "-wal", ec);
      fs::remove(path.native() + "-shm", ec);
      log::get("cache")->warn(
          "result cache {} is unusable ({}): set aside as {}, starting a new one", path.native(),
          why, aside.native());
    }
    std::string why2;
    if (const int rc = try_open(why2); rc != SQLITE_OK) {
      close();
      return make_error("result cache " + path.native() + ": cannot create it: " + why2);
    }
    return {};
  }

  void recover(int rc) {
    if (auto r = set_aside_and_reopen(message(rc)); !r) {
      warn(r.error().message);
    }
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SqliteStore::~SqliteStore() {
  flush();
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const fs::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return make_error("result cache: cannot create " + path.parent_path().native() + ": " +
                        ec.message());
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // Another process opening or writing it at the same moment: wait (bounded), never set
  // aside what is only busy. Only a file that is not a usable database of ours is set aside.
  for (int attempt = 0;; ++attempt) {
    std::string why;
    const int rc = impl->try_open(why);
    if (rc == SQLITE_OK) {
      break;
    }
    impl->close();
    const int primary = rc & 0xff;
    if (is_corruption(rc)) {
      PSS_TRY_VOID(impl->set_aside_and_reopen(why));
      break;
    }
    if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && attempt < k_open_attempts) {
      std::this_thread::sleep_for(k_open_retry);
      continue;
    }
    return make_error("result cache " + path.native() + ": cannot open it: " + why);
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(impl)));
  store->purge_expired();
  return store;
}

std::optional<Entry> SqliteStore::get(const std::string& key) {
  std::lock_guard lock(m_impl->mutex);
  Impl& s = *m_impl;
  if (!s.db) {
    return std::nullopt;
  }
  for (auto p = s.pending.rbegin(); p != s.pending.rend(); ++p) {
    if (p->key == key) {
      if (p->expires_at <= unix_now()) {
        return std::nullopt;
      }
      return Entry{p->value, p->stored_at};
    }
  }
  sqlite3_bind_text(s.get, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.get, 2, unix_now());
  const int rc = sqlite3_step(s.get);
  std::optional<Entry> out;
  if (rc == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s.get, 0));
    const int size = sqlite3_column_bytes(s.get, 0);
    out = Entry{std::string(text ? text : "", static_cast<std::size_t>(size)),
                sqlite3_column_int64(s.get, 1)};
  }
  sqlite3_reset(s.get);
  sqlite3_clear_bindings(s.get);
  if (is_corruption(rc)) {
    s.recover(rc);
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    s.warn("cannot read: " + s.message(rc));
  }
  return out;
}

void SqliteStore::put(const std::string& key, const std::string& value, std::chrono::seconds ttl) {
  std::size_t writes = 0;
  {
    std::lock_guard lock(m_impl->mutex);
    Impl& s = *m_impl;
    if (!s.db) {
      return;
    }
    const auto now = unix_now();
    if (s.pending.empty()) {
      s.pending_since = std::chrono::steady_clock::now();
    }
    s.pending.push_back({key, value, now, now + static_cast<std::int64_t>(ttl.count())});
    if (s.pending.size() >= k_batch ||
        std::chrono::steady_clock::now() - s.pending_since >= k_batch_age) {
      writes = s.flush();
    }
  }
  if (writes > 0 && writes % k_purge_every < k_batch) {
    purge_expired();
  }
}

void SqliteStore::flush() {
  std::lock_guard lock(m_impl->mutex);
  m_impl->flush();
}

std::string SqliteStore::where() const {
  return "sqlite:" + m_impl->path.native();
}

std::size_t SqliteStore::purge_expired() {
  std::lock_guard lock(m_impl->mutex);
  Impl& s = *m_impl;
  s.flush();
  if (!s.db) {
    return 0;
  }
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(s.db, "DELETE FROM results WHERE expires_at <= ?1", -1, &st, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, unix_now());
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (is_corruption(rc)) {
    s.recover(rc);
    return 0;
  }
  if (rc != SQLITE_DONE) {
    s.warn("cannot remove expired entries: " + s.message(rc));
    return 0;
  }
  return static_cast<std::size_t>(sqlite3_changes(s.db));
}

} // namespace pss::cache

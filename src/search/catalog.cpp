#include "vtl/search/catalog.h"

#include <sqlite3.h>

#include "vtl/core/error.h"

namespace vtl::search {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE images(id INTEGER PRIMARY KEY, path TEXT NOT NULL, label INTEGER, "
    "class TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL UNIQUE, metadata TEXT NOT NULL);"
    "CREATE TABLE vtl(key TEXT PRIMARY KEY, value TEXT);"
    "INSERT INTO vtl VALUES('format', 'vtl-catalog'), ('version', '1');";

/// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::filesystem::path& file) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      fail("{}: {}", file.string(), sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

std::string column_text(sqlite3_stmt* stmt, int column) {
  const auto* text = sqlite3_column_text(stmt, column);
  return text ? reinterpret_cast<const char*>(text) : "";
}

CatalogEntry read_entry(sqlite3_stmt* stmt) {
  CatalogEntry entry;
  entry.id = sqlite3_column_int64(stmt, 0);
  entry.path = column_text(stmt, 1);
  entry.label = sqlite3_column_type(stmt, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(stmt, 2);
  entry.class_name = column_text(stmt, 3);
  entry.sha256 = column_text(stmt, 4);
  entry.metadata = nlohmann::json::parse(column_text(stmt, 5), nullptr, false);
  if (entry.metadata.is_discarded()) entry.metadata = nlohmann::json::object();
  return entry;
}

constexpr const char* kSelect = "SELECT id, path, label, class, sha256, metadata FROM images";

}  // namespace

Catalog::Catalog(const std::filesystem::path& file, bool create) : file_(file) {
  if (create) {
    VTL_CHECK(!std::filesystem::exists(file), "{} already exists", file.string());
  } else {
    VTL_CHECK(std::filesystem::exists(file), "{} is missing", file.string());
  }
  const int flags =
      SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    fail("cannot open {}: {}", file.string(), message);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    if (create) {
      exec(kSchema);
    } else {
      Statement check(db_, "SELECT value FROM vtl WHERE key = 'format'", file_);
      VTL_CHECK(
          sqlite3_step(check.get()) == SQLITE_ROW && column_text(check.get(), 0) == "vtl-catalog",
          "{} is not a vtl catalogue", file.string());
    }
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    fail("{} is not a vtl catalogue ({})", file.string(), e.what());
  }
}

Catalog::~Catalog() {
  if (db_) sqlite3_close(db_);
}

void Catalog::exec(const std::string& sql) const {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    fail("{}: {}", file_.string(), message);
  }
}

int64_t Catalog::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_, "SELECT COUNT(*) FROM images", file_);
  sqlite3_step(stmt.get());
  return sqlite3_column_int64(stmt.get(), 0);
}

std::optional<CatalogEntry> Catalog::get(int64_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_, (std::string(kSelect) + " WHERE id = ?").c_str(), file_);
  sqlite3_bind_int64(stmt.get(), 1, id);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return std::nullopt;
  return read_entry(stmt.get());
}

std::optional<int64_t> Catalog::find_by_hash(const std::string& sha256) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_, "SELECT id FROM images WHERE sha256 = ?", file_);
  sqlite3_bind_text(stmt.get(), 1, sha256.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return std::nullopt;
  return sqlite3_column_int64(stmt.get(), 0);
}

std::vector<CatalogEntry> Catalog::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_, (std::string(kSelect) + " ORDER BY id").c_str(), file_);
  std::vector<CatalogEntry> entries;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) entries.push_back(read_entry(stmt.get()));
  return entries;
}

std::map<std::string, int64_t> Catalog::class_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement stmt(db_,
                 "SELECT class, MIN(label) FROM images WHERE class IS NOT NULL AND label IS NOT "
                 "NULL GROUP BY class",
                 file_);
  std::map<std::string, int64_t> ids;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    ids[name ? name : ""] = sqlite3_column_int64(stmt.get(), 1);
  }
  return ids;
}

void Catalog::append(const std::vector<CatalogEntry>& entries) {
  const int64_t first = size();
  std::lock_guard<std::mutex> lock(mutex_);
  exec("BEGIN IMMEDIATE");
  try {
    Statement stmt(db_,
                   "INSERT INTO images(id, path, label, class, sha256, metadata) "
                   "VALUES(?, ?, ?, ?, ?, ?)",
                   file_);
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& e = entries[i];
      VTL_CHECK(e.id == first + static_cast<int64_t>(i),
                "index {}: the catalogue changed while these images were embedded (another "
                "`vtl index add` at the same time?); nothing was added: run the command again",
                file_.parent_path().string());
      sqlite3_reset(stmt.get());
      sqlite3_bind_int64(stmt.get(), 1, e.id);
      sqlite3_bind_text(stmt.get(), 2, e.path.c_str(), -1, SQLITE_TRANSIENT);
      if (e.label >= 0)
        sqlite3_bind_int64(stmt.get(), 3, e.label);
      else
        sqlite3_bind_null(stmt.get(), 3);
      sqlite3_bind_text(stmt.get(), 4, e.class_name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt.get(), 5, e.sha256.c_str(), -1, SQLITE_TRANSIENT);
      const std::string metadata = e.metadata.dump();
      sqlite3_bind_text(stmt.get(), 6, metadata.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(stmt.get()) != SQLITE_DONE)
        fail("{}: cannot add {}: {}", file_.string(), e.path, sqlite3_errmsg(db_));
    }
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

}  // namespace vtl::search

#pragma once
// catalog.sqlite: what each vector id of an index stands for. One row per indexed image:
//   images(id INTEGER PRIMARY KEY,   -- = the vector's id in the FAISS index
//          path TEXT NOT NULL,        -- absolute path of the file when it was indexed
//          label INTEGER,             -- class id or NULL
//          class TEXT,                -- class name or ''
//          sha256 TEXT NOT NULL UNIQUE,  -- content hash: the same bytes are stored once
//          metadata TEXT NOT NULL)    -- JSON object (size, source folder, ...)
// All methods are safe to call from several threads (one connection behind a mutex).

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace vtl::search {

struct CatalogEntry {
  int64_t id = -1;
  std::string path;
  int64_t label = -1;  ///< -1 when unlabelled
  std::string class_name;
  std::string sha256;
  nlohmann::json metadata = nlohmann::json::object();
};

class Catalog {
 public:
  /// Opens `file`; `create` makes a new empty catalogue (the file must not exist).
  /// A missing file or one that is not a vtl catalogue is a vtl::Error naming it.
  Catalog(const std::filesystem::path& file, bool create = false);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  int64_t size() const;
  std::optional<CatalogEntry> get(int64_t id) const;
  /// Id of the image with this content hash, if catalogued.
  std::optional<int64_t> find_by_hash(const std::string& sha256) const;
  std::vector<CatalogEntry> all() const;
  /// The id of each class name among the labelled entries (the smallest, should one class
  /// carry several).
  std::map<std::string, int64_t> class_ids() const;

  /// Appends entries in one transaction; their ids must continue the sequence
  /// (size(), size()+1, ...) and their hashes must be new.
  void append(const std::vector<CatalogEntry>& entries);

  const std::filesystem::path& file() const { return file_; }

 private:
  void exec(const std::string& sql) const;
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mutex_;
};

}  // namespace vtl::search

#include "vtl/search/image_index.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/json_document.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/file_set_commit.h"
#include "vtl/core/folder_lock.h"
#include "vtl/core/sha256.h"
#include "vtl/core/stop_signals.h"
#include "vtl/data/batch_reader.h"

namespace vtl::search {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "vtl-index";
constexpr const char* kIndexFile = "index.faiss";
constexpr const char* kCatalogFile = "catalog.sqlite";
constexpr const char* kJsonFile = "index.json";

fs::path commit_journal(const fs::path& dir) { return dir / ".commit.json"; }

/// Completes an update a crash interrupted and drops what killed writers left behind.
void recover_folder(const fs::path& dir) {
  finish_interrupted_commit(commit_journal(dir));
  remove_stale_temporaries(dir);
}

fs::path staging_name(const fs::path& target) {
  return target.parent_path() / (target.filename().string() + ".new-" + std::to_string(::getpid()));
}

/// Images not yet catalogued (by content), with their hashes.
struct NewImages {
  std::vector<embed::ImageItem> items;
  std::vector<std::string> hashes;
  std::vector<int64_t> rows;  ///< position in the input (build_from_features)
  int64_t duplicates = 0;
  /// Every readable input's content, by its catalogue path (absolute, normalised).
  std::map<std::string, std::string> hash_of_path;
};

/// The path under which the catalogue lists `path`.
std::string catalogue_path(const fs::path& path) {
  return fs::absolute(path).lexically_normal().string();
}

/// Files that cannot be read (no permission, gone since listed) are appended to
/// `unreadable` and left out.
NewImages select_new(const std::vector<embed::ImageItem>& items, const Catalog* catalog,
                     std::vector<data::SkippedFile>& unreadable) {
  NewImages out;
  std::set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string hash;
    try {
      hash = sha256_file(items[i].path);
    } catch (const Error& e) {
      unreadable.push_back(data::SkippedFile::from_error(items[i].path, e.what()));
      continue;
    }
    out.hash_of_path[catalogue_path(items[i].path)] = hash;
    if (!seen.insert(hash).second || (catalog && catalog->find_by_hash(hash))) {
      ++out.duplicates;
      continue;
    }
    out.items.push_back(items[i]);
    out.hashes.push_back(hash);
    out.rows.push_back(static_cast<int64_t>(i));
  }
  return out;
}

/// Embeds `images` (in order) and leaves out, from `images` and the result alike, the
/// files that cannot be decoded; those are appended to `unreadable`. Returns [n, dim].
torch::Tensor embed_items(embed::FeatureExtractor& extractor, NewImages& images,
                          const IndexOptions& options, std::vector<data::SkippedFile>& unreadable) {
  VTL_CHECK(options.batch_size > 0, "batch size must be positive");
  std::vector<torch::Tensor> rows;
  std::vector<bool> readable(images.items.size(), true);
  std::vector<fs::path> paths;
  for (const auto& item : images.items) paths.push_back(item.path);
  data::BatchReader reader(std::move(paths), size_t(options.batch_size),
                           [&](const fs::path& path) { return extractor.load(path); });
  while (auto batch = reader.next()) {
    for (size_t i = 0; i < batch->size(); ++i) {
      if (batch->errors[i].empty()) continue;
      const size_t item = batch->first + i;
      readable[item] = false;
      const auto& path = images.items[item].path;
      unreadable.push_back(data::SkippedFile::from_error(path, batch->errors[i]));
    }
    if (batch->readable() > 0) rows.push_back(extractor.embed(batch->stacked()));
    if (options.progress)
      options.progress(int64_t(batch->first + batch->size()), int64_t(images.items.size()));
    if (stop_requested())
      throw Interrupted(
          "stopped before anything was written (for a large folder, `vtl extract DATA --out F` "
          "keeps what it finished when stopped and goes on from there; `vtl index build "
          "--features F` then indexes it)",
          stop_signal());
  }
  NewImages kept;
  kept.duplicates = images.duplicates;
  kept.hash_of_path = std::move(images.hash_of_path);
  for (size_t i = 0; i < readable.size(); ++i) {
    if (!readable[i]) continue;
    kept.items.push_back(std::move(images.items[i]));
    kept.hashes.push_back(std::move(images.hashes[i]));
    kept.rows.push_back(images.rows[i]);
  }
  images = std::move(kept);
  return rows.empty() ? torch::zeros({0, extractor.dim()}) : torch::cat(rows);
}

std::vector<CatalogEntry> make_entries(const NewImages& images, int64_t first_id) {
  std::vector<CatalogEntry> entries;
  for (size_t i = 0; i < images.items.size(); ++i) {
    const auto& item = images.items[i];
    CatalogEntry entry;
    entry.id = first_id + static_cast<int64_t>(i);
    entry.path = catalogue_path(item.path);
    entry.label = item.label;
    entry.class_name = item.class_name;
    entry.sha256 = images.hashes[i];
    std::error_code ec;
    const auto bytes = fs::file_size(item.path, ec);
    entry.metadata = {{"bytes", ec ? 0 : static_cast<int64_t>(bytes)}};
    entries.push_back(std::move(entry));
  }
  return entries;
}

/// Gives each labelled entry the id its class has in `known` (class name -> id), or, for a
/// class not in it, the next id after all of them (added to `known`): one id per class
/// however the images came into the index.
void assign_class_ids(std::vector<CatalogEntry>& entries, std::map<std::string, int64_t>& known) {
  int64_t next = 0;
  for (const auto& [name, id] : known) next = std::max(next, id + 1);
  for (auto& entry : entries) {
    if (entry.label < 0) continue;
    const auto [found, added] = known.emplace(entry.class_name, next);
    if (added) ++next;
    entry.label = found->second;
  }
}

json describe(const embed::FeatureSpec& spec, const std::string& factory, Metric metric,
              int64_t count) {
  return {{"format", kFormat},
          {"version", 1},
          {"spec", embed::to_json(spec)},
          {"factory", factory},
          {"metric", to_string(metric)},
          {"count", count}};
}

/// Writes the three files under staging names, then moves them into place as one unit
/// (core/file_set_commit.h): a crash leaves the old index or, once finished by the next
/// open(), the new one. `catalog_base` (may be empty) is copied before `entries` are added.
void commit_index(const fs::path& dir, const VectorIndex& vectors, const fs::path& catalog_base,
                  const std::vector<CatalogEntry>& entries, const json& description) {
  const fs::path index_new = staging_name(dir / kIndexFile);
  const fs::path catalog_new = staging_name(dir / kCatalogFile);
  const fs::path json_new = staging_name(dir / kJsonFile);
  try {
    fs::remove(catalog_new);
    if (!catalog_base.empty()) fs::copy_file(catalog_base, catalog_new);
    {
      Catalog catalog(catalog_new, /*create=*/catalog_base.empty());
      catalog.append(entries);
      VTL_CHECK(catalog.size() == vectors.size(), "catalogue holds {} images for {} vectors",
                catalog.size(), vectors.size());
    }
    vectors.save(index_new);
    write_file_atomically(json_new, description.dump(2) + "\n");
  } catch (...) {
    std::error_code ec;
    for (const auto& path : {index_new, catalog_new, json_new}) fs::remove(path, ec);
    throw;
  }
  commit_file_set(commit_journal(dir), {{index_new, dir / kIndexFile},
                                        {catalog_new, dir / kCatalogFile},
                                        {json_new, dir / kJsonFile}});
}

/// Writes into `dir` a new index like `like` (spec, factory, metric) of `rows` (vectors
/// taken from stored indexes) and their `entries` (ids 0, 1, ...); returns its size.
int64_t commit_rebuilt(const fs::path& dir, const ImageIndex& like,
                       const std::vector<torch::Tensor>& rows,
                       const std::vector<CatalogEntry>& entries) {
  const torch::Tensor stacked = torch::stack(rows);
  VectorIndex vectors(like.spec().dim, like.factory(), like.metric());
  vectors.train(stacked);
  vectors.add(stacked);
  commit_index(dir, vectors, {}, entries,
               describe(like.spec(), like.factory(), like.metric(), vectors.size()));
  return vectors.size();
}

/// One command at a time changes an index: a second fails at once instead of after
/// embedding its images.
FolderLock lock_index(const fs::path& dir) {
  VTL_CHECK(fs::is_directory(dir), "{} is not an index folder (no such folder)", dir.string());
  return FolderLock(dir, "vtl index command", "wait for it to end, then run this one again");
}

void check_new_folder(const fs::path& dir) {
  if (fs::is_directory(dir)) recover_folder(dir);
  VTL_CHECK(!fs::exists(dir / kJsonFile),
            "{} already holds an index; use `vtl index add` to add images to it", dir.string());
  fs::create_directories(dir);
}

}  // namespace

AddReport ImageIndex::build(const fs::path& dir, embed::FeatureExtractor& extractor,
                            const std::vector<embed::ImageItem>& items,
                            const IndexOptions& options) {
  VTL_CHECK(!items.empty(), "no images to index");
  std::error_code exists_error;
  const bool folder_was_there = fs::exists(dir, exists_error);
  check_new_folder(dir);
  const FolderLock lock = lock_index(dir);
  VectorIndex vectors(extractor.dim(), options.factory, options.metric);
  AddReport report;
  NewImages images;
  try {
    images = select_new(items, nullptr, report.unreadable);
    const torch::Tensor embedded = embed_items(extractor, images, options, report.unreadable);
    VTL_CHECK(embedded.size(0) > 0, "none of the {} images could be decoded (the first, {}: {})",
              report.unreadable.size(), report.unreadable.front().path.string(),
              report.unreadable.front().reason);
    vectors.train(embedded);
    vectors.add(embedded);
    commit_index(dir, vectors, {}, make_entries(images, 0),
                 describe(extractor.spec(), options.factory, options.metric, vectors.size()));
  } catch (...) {
    // Nothing was committed: the folder this build made goes too.
    std::error_code ec;
    if (!folder_was_there && !fs::exists(dir / kJsonFile, ec)) fs::remove_all(dir, ec);
    throw;
  }
  report.added = static_cast<int64_t>(images.items.size());
  report.duplicates = images.duplicates;
  report.total = vectors.size();
  return report;
}

AddReport ImageIndex::build_from_features(const fs::path& dir, const embed::FeatureSet& features,
                                          const IndexOptions& options) {
  VTL_CHECK(!features.rows.empty(), "the features folder holds no rows");
  check_new_folder(dir);
  const FolderLock lock = lock_index(dir);
  VectorIndex vectors(features.spec.dim, options.factory, options.metric);
  std::vector<data::SkippedFile> unreadable;
  const NewImages images = select_new(features.rows, nullptr, unreadable);
  VTL_CHECK(!images.items.empty(),
            "none of the {} images of the features folder can be read "
            "(the first, {}: {})",
            unreadable.size(), unreadable.front().path.string(), unreadable.front().reason);
  const auto rows = torch::tensor(images.rows, torch::kLong);
  const torch::Tensor selected = features.features.index_select(0, rows);
  vectors.train(selected);
  vectors.add(selected);
  commit_index(dir, vectors, {}, make_entries(images, 0),
               describe(features.spec, options.factory, options.metric, vectors.size()));
  return {static_cast<int64_t>(images.items.size()), images.duplicates, vectors.size(), unreadable};
}

AddReport ImageIndex::add(const fs::path& dir, embed::FeatureExtractor& extractor,
                          const std::vector<embed::ImageItem>& items, const IndexOptions& options) {
  const FolderLock lock = lock_index(dir);
  ImageIndex index = open(dir);
  index.check_query_spec(extractor.spec());
  AddReport report;
  NewImages images = select_new(items, index.catalog_.get(), report.unreadable);
  report.duplicates = images.duplicates;
  const torch::Tensor embedded = embed_items(extractor, images, options, report.unreadable);
  // A catalogued file given again with other bytes (rewritten in place) loses its old entry,
  // whose vector no longer describes it; its new content is added like any other.
  std::vector<CatalogEntry> catalogued = index.catalog_->all();
  const auto rewritten = [&](const CatalogEntry& entry) {
    const auto now = images.hash_of_path.find(entry.path);
    return now != images.hash_of_path.end() && now->second != entry.sha256;
  };
  report.replaced = std::count_if(catalogued.begin(), catalogued.end(), rewritten);
  const int64_t kept = index.size() - report.replaced;
  std::vector<CatalogEntry> entries = make_entries(images, kept);
  std::map<std::string, int64_t> class_ids = index.catalog_->class_ids();
  assign_class_ids(entries, class_ids);
  if (report.replaced > 0) {
    VTL_CHECK(kept > 0 || embedded.size(0) > 0,
              "{}: every catalogued file was rewritten and none can be indexed; nothing was "
              "changed",
              dir.string());
    // The kept vectors are read back and the index rebuilt, as remove() does.
    std::vector<CatalogEntry> rebuilt;
    std::vector<torch::Tensor> rows;
    for (auto& entry : catalogued) {
      if (rewritten(entry)) continue;
      rows.push_back(index.vectors_->reconstruct(entry.id));
      entry.id = static_cast<int64_t>(rebuilt.size());
      rebuilt.push_back(std::move(entry));
    }
    for (auto& entry : entries) rebuilt.push_back(std::move(entry));
    for (int64_t i = 0; i < embedded.size(0); ++i) rows.push_back(embedded[i]);
    report.total = commit_rebuilt(dir, index, rows, rebuilt);
    report.added = static_cast<int64_t>(images.items.size());
    return report;
  }
  if (embedded.size(0) > 0) {
    index.vectors_->add(embedded);
    commit_index(dir, *index.vectors_, dir / kCatalogFile, entries,
                 describe(index.spec_, index.factory_, index.metric(), index.size()));
  }
  report.added = static_cast<int64_t>(images.items.size());
  report.total = index.size();
  return report;
}

AddReport ImageIndex::merge(const fs::path& dir, const std::vector<fs::path>& parts) {
  VTL_CHECK(!parts.empty(), "no index folders to merge");
  std::vector<ImageIndex> indexes;
  for (const auto& part : parts) indexes.push_back(open(part));
  const ImageIndex& first = indexes.front();
  for (const auto& index : indexes) {
    const std::string mismatch = embed::spec_mismatch(first.spec_, index.spec_);
    VTL_CHECK(mismatch.empty(), "cannot merge {} into {}: built with another extractor ({})",
              index.dir_.string(), first.dir_.string(), mismatch);
    VTL_CHECK(index.factory_ == first.factory_ && index.metric() == first.metric(),
              "cannot merge {} ({} {}) with {} ({} {})", index.dir_.string(), index.factory_,
              to_string(index.metric()), first.dir_.string(), first.factory_,
              to_string(first.metric()));
  }
  check_new_folder(dir);
  const FolderLock lock = lock_index(dir);
  std::vector<CatalogEntry> entries;
  std::vector<torch::Tensor> rows;
  std::set<std::string> seen;
  int64_t duplicates = 0;
  for (const auto& index : indexes) {
    for (auto& entry : index.catalog_->all()) {
      if (!seen.insert(entry.sha256).second) {
        ++duplicates;
        continue;
      }
      rows.push_back(index.vectors_->reconstruct(entry.id));
      entry.id = static_cast<int64_t>(entries.size());
      entries.push_back(std::move(entry));
    }
  }
  VTL_CHECK(!rows.empty(), "the index folders hold no images");
  std::map<std::string, int64_t> class_ids = first.catalog_->class_ids();
  assign_class_ids(entries, class_ids);
  const int64_t total = commit_rebuilt(dir, first, rows, entries);
  return {total, duplicates, total, {}};
}

namespace {

/// remove() and prune(): one pass over the index at `dir`; `refuse_all(count)` throws when
/// every one of its `count` images is selected.
std::vector<CatalogEntry> remove_selected(const fs::path& dir,
                                          const std::function<bool(const CatalogEntry&)>& take_out,
                                          const std::function<void(size_t)>& refuse_all) {
  std::vector<CatalogEntry> removed, kept;
  std::vector<torch::Tensor> rows;
  const FolderLock lock = lock_index(dir);
  ImageIndex index = ImageIndex::open(dir);
  for (auto& entry : index.catalog().all()) {
    if (take_out(entry)) {
      removed.push_back(std::move(entry));
      continue;
    }
    rows.push_back(index.vectors().reconstruct(entry.id));
    entry.id = static_cast<int64_t>(kept.size());
    kept.push_back(std::move(entry));
  }
  if (removed.empty()) return removed;
  if (kept.empty()) refuse_all(removed.size());
  commit_rebuilt(dir, index, rows, kept);
  return removed;
}

}  // namespace

std::vector<CatalogEntry> ImageIndex::remove(
    const fs::path& dir, const std::function<bool(const CatalogEntry&)>& take_out) {
  return remove_selected(dir, take_out, [&](size_t count) {
    fail(
        "{}: that would take out all of its {} images; nothing was changed (to drop the whole "
        "index, delete the folder)",
        dir.string(), count);
  });
}

std::vector<CatalogEntry> ImageIndex::prune(const fs::path& dir) {
  return remove_selected(
      dir,
      [](const CatalogEntry& entry) {
        std::error_code ec;
        return !fs::exists(entry.path, ec);
      },
      [&](size_t count) {
        fail("{}: none of its {} catalogued files exists any more (moved?); nothing was changed",
             dir.string(), count);
      });
}

ImageIndex ImageIndex::open(const fs::path& dir) {
  VTL_CHECK(fs::is_directory(dir), "{} is not an index folder (no such folder)", dir.string());
  recover_folder(dir);
  const fs::path json_path = dir / kJsonFile;
  VTL_CHECK(fs::exists(json_path), "{} is not an index folder: {} is missing", dir.string(),
            json_path.string());
  const json description = parse_json_document(read_file(json_path), json_path.string());
  VTL_CHECK(description.is_object() && description.value("format", json()) == kFormat,
            "{} is not a vtl index description", json_path.string());
  ImageIndex index;
  index.dir_ = dir;
  int64_t count = 0;
  Metric metric = Metric::cosine;
  try {
    index.spec_ = embed::feature_spec_from_json(description.at("spec"), json_path.string());
    index.factory_ = description.at("factory").get<std::string>();
    metric = parse_metric(description.at("metric").get<std::string>());
    count = description.at("count").get<int64_t>();
  } catch (const json::exception& e) {
    fail("{}: malformed index description: {}", json_path.string(), e.what());
  }
  for (const char* name : {kIndexFile, kCatalogFile}) {
    VTL_CHECK(fs::exists(dir / name), "index folder {} is incomplete: {} is missing", dir.string(),
              name);
  }
  index.vectors_ = std::make_unique<VectorIndex>(VectorIndex::load(dir / kIndexFile, metric));
  index.catalog_ = std::make_unique<Catalog>(dir / kCatalogFile);
  VTL_CHECK(index.vectors_->dim() == index.spec_.dim, "{}: holds {}-d vectors, {} says {}",
            (dir / kIndexFile).string(), index.vectors_->dim(), kJsonFile, index.spec_.dim);
  VTL_CHECK(index.vectors_->size() == count && index.catalog_->size() == count,
            "index folder {} is inconsistent: {} says {} images, {} holds {} vectors and {} "
            "{} entries",
            dir.string(), kJsonFile, count, kIndexFile, index.vectors_->size(), kCatalogFile,
            index.catalog_->size());
  return index;
}

void ImageIndex::check_query_spec(const embed::FeatureSpec& query) const {
  const std::string mismatch = embed::spec_mismatch(spec_, query);
  VTL_CHECK(mismatch.empty(),
            "the index {} was built with another feature extractor than the query ({}); "
            "queries must be embedded with {} {} {}",
            dir_.string(), mismatch, spec_.model, spec_.weights, spec_.layer);
}

std::vector<std::vector<SearchResult>> ImageIndex::search(
    const torch::Tensor& vectors, int64_t k, const std::vector<std::string>& leave_out) const {
  const auto queries = vectors.dim() == 1 ? vectors.unsqueeze(0) : vectors;
  VTL_CHECK(queries.dim() == 2 && queries.size(1) == spec_.dim,
            "query vectors must have width {} (the index's), got {}", spec_.dim, queries.size(-1));
  VTL_CHECK(leave_out.empty() || int64_t(leave_out.size()) == queries.size(0),
            "search: {} hashes to leave out for {} queries", leave_out.size(), queries.size(0));
  // The catalogue stores each content once: one more hit makes up for the one left out.
  const int64_t asked = k + (leave_out.empty() ? 0 : 1);
  std::vector<std::vector<SearchResult>> out;
  for (const auto& hits : vectors_->search(queries, asked)) {
    const std::string* own = leave_out.empty() ? nullptr : &leave_out[out.size()];
    std::vector<SearchResult> results;
    for (const auto& hit : hits) {
      if (int64_t(results.size()) == k) break;
      auto entry = catalog_->get(hit.id);
      VTL_CHECK(entry.has_value(), "{} has no entry for id {}", kCatalogFile, hit.id);
      if (own && !own->empty() && entry->sha256 == *own) continue;
      results.push_back({std::move(*entry), hit.score});
    }
    out.push_back(std::move(results));
  }
  return out;
}

std::vector<ImageIndex::DuplicatePair> ImageIndex::find_duplicates(float threshold,
                                                                   int64_t neighbours) const {
  const int64_t n = size();
  std::vector<DuplicatePair> pairs;
  if (n < 2) return pairs;
  std::vector<torch::Tensor> stored;
  for (int64_t id = 0; id < n; ++id) stored.push_back(vectors_->reconstruct(id));
  const auto all = torch::stack(stored);
  const bool cosine = metric() == Metric::cosine;
  const auto close = [&](float score) { return cosine ? score >= threshold : score <= threshold; };
  const int64_t batch = 1024;
  for (int64_t start = 0; start < n; start += batch) {
    // Each query's neighbours, nearest first, are fetched until the farthest one fetched is
    // no longer close (k doubles for the queries whose k-th neighbour still is), so a group
    // of many near-identical images gives all its pairs.
    std::vector<int64_t> pending;
    for (int64_t id = start; id < std::min(n, start + batch); ++id) pending.push_back(id);
    for (int64_t k = std::min(std::max<int64_t>(neighbours, 1) + 1, n); !pending.empty();
         k = std::min(2 * k, n)) {
      const auto hits =
          vectors_->search(all.index_select(0, torch::tensor(pending, torch::kInt64)), k);
      std::vector<int64_t> more;
      for (size_t q = 0; q < hits.size(); ++q) {
        const int64_t id = pending[q];
        if (int64_t(hits[q].size()) == k && k < n && close(hits[q].back().score)) {
          more.push_back(id);
          continue;
        }
        for (const auto& hit : hits[q]) {
          if (hit.id == id || hit.id < 0 || !close(hit.score)) continue;
          // Keep each pair once, even when only one side lists the other.
          pairs.push_back({std::min(id, hit.id), std::max(id, hit.id), hit.score});
        }
      }
      pending = std::move(more);
    }
  }
  std::sort(pairs.begin(), pairs.end(), [&](const auto& x, const auto& y) {
    if (x.a != y.a || x.b != y.b) return std::tie(x.a, x.b) < std::tie(y.a, y.b);
    return x.score < y.score;
  });
  pairs.erase(std::unique(pairs.begin(), pairs.end(),
                          [](const auto& x, const auto& y) { return x.a == y.a && x.b == y.b; }),
              pairs.end());
  std::sort(pairs.begin(), pairs.end(), [&](const auto& x, const auto& y) {
    return cosine ? x.score > y.score : x.score < y.score;
  });
  return pairs;
}

}  // namespace vtl::search

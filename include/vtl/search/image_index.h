#pragma once
// An index folder (docs/architecture.md, "Files written"):
//   index.faiss     the vectors (VectorIndex; id = catalogue id)
//   catalog.sqlite  id -> path, label, class, content hash, metadata (Catalog)
//   index.json      {"format": "vtl-index", "version": 1, "spec": FeatureSpec,
//                    "factory": "HNSW32", "metric": "cosine", "count": N}
// Building and adding never modify files in place: the new index, catalogue and
// description are written to temporary names and renamed into place (index.json last),
// so a failed add leaves the folder as it was. open() checks that the three agree.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "vtl/data/dataset.h"
#include "vtl/embed/extract.h"
#include "vtl/embed/extractor.h"
#include "vtl/search/catalog.h"
#include "vtl/search/vector_index.h"

namespace vtl::search {

struct IndexOptions {
  std::string factory = "Flat";
  Metric metric = Metric::cosine;
  int64_t batch_size = 32;
  /// Called after each embedded batch: (images done, images to embed).
  std::function<void(int64_t, int64_t)> progress;
};

struct AddReport {
  int64_t added = 0;       ///< new vectors
  int64_t duplicates = 0;  ///< files whose content was already catalogued (or repeated)
  int64_t total = 0;       ///< vectors in the index afterwards
  /// Files left out because they could not be read (no permission) or decoded (corrupt,
  /// truncated, over the pixel limit), with the reason; the other images are indexed.
  std::vector<data::SkippedFile> unreadable;
  /// Catalogued files given again with other bytes: their old entries were taken out (ids
  /// then renumbered, as remove() does) and their new content added.
  int64_t replaced = 0;
};

/// One result of a query.
struct SearchResult {
  CatalogEntry entry;
  float score = 0;
};

class ImageIndex {
 public:
  /// Creates `dir` (which must not hold an index) from images, embedding them with
  /// `extractor`. Files with identical content are indexed once; files that cannot be
  /// decoded are left out and listed in the report (an error when no image is left).
  static AddReport build(const std::filesystem::path& dir, embed::FeatureExtractor& extractor,
                         const std::vector<embed::ImageItem>& items, const IndexOptions& options);
  /// Same from a finished features folder (vtl extract); files are hashed, not re-embedded.
  static AddReport build_from_features(const std::filesystem::path& dir,
                                       const embed::FeatureSet& features,
                                       const IndexOptions& options);
  /// Adds images to an existing index; `extractor` must match index.json's spec.
  /// Undecodable images are left out and listed in the report. Atomic: on any error (disk
  /// full) the folder is unchanged.
  static AddReport add(const std::filesystem::path& dir, embed::FeatureExtractor& extractor,
                       const std::vector<embed::ImageItem>& items, const IndexOptions& options);

  /// Merges index folders built with the same spec, factory and metric (e.g. shards built
  /// on several machines) into a new folder `dir`; ids are renumbered in argument order
  /// and content already catalogued by an earlier folder is left out. Vectors are taken
  /// from the stored indexes (exact for Flat/HNSW; IVF-PQ codes are decoded and
  /// re-encoded with a quantizer trained on them).
  static AddReport merge(const std::filesystem::path& dir,
                         const std::vector<std::filesystem::path>& parts);

  /// Takes out of the index at `dir`, in place and as one unit (a crash leaves the old
  /// index or the new one), the catalogued images `take_out` selects; the others keep
  /// their vectors (taken from the stored index, as merge does) and are renumbered in
  /// order. Returns the entries taken out (with their old ids); nothing is written when
  /// none is selected. Taking out every image is refused (vtl::Error, nothing changed).
  static std::vector<CatalogEntry> remove(const std::filesystem::path& dir,
                                          const std::function<bool(const CatalogEntry&)>& take_out);

  /// remove() of the catalogued images whose files are gone. An index whose every file
  /// is gone is refused (moved rather than deleted, most likely).
  static std::vector<CatalogEntry> prune(const std::filesystem::path& dir);

  /// Opens a folder for searching; a missing or inconsistent file is a vtl::Error
  /// naming it.
  static ImageIndex open(const std::filesystem::path& dir);

  const embed::FeatureSpec& spec() const { return spec_; }
  const std::string& factory() const { return factory_; }
  Metric metric() const { return vectors_->metric(); }
  int64_t size() const { return vectors_->size(); }
  const Catalog& catalog() const { return *catalog_; }
  const std::filesystem::path& dir() const { return dir_; }
  VectorIndex& vectors() { return *vectors_; }

  /// Throws vtl::Error unless vectors made with `query` are comparable with this index.
  void check_query_spec(const embed::FeatureSpec& query) const;

  /// Top-k for a [dim] or [n, dim] vector batch (thread-safe). `leave_out`: empty, or one
  /// SHA-256 per row: that row's results skip the catalogued image with those bytes (a
  /// catalogued query, "more like this") and still number k when the index has them.
  std::vector<std::vector<SearchResult>> search(
      const torch::Tensor& vectors, int64_t k,
      const std::vector<std::string>& leave_out = {}) const;

  /// Pairs (a < b) of catalogued images whose vectors are within `threshold`
  /// (cosine: similarity >= threshold; l2: squared distance <= threshold), most similar
  /// first: every such pair the index finds (exactly all of them for a Flat index; an
  /// approximate index may miss some, as in search). `neighbours`: how many of each
  /// image's nearest are fetched first; more are fetched while they are still close.
  struct DuplicatePair {
    int64_t a = -1, b = -1;
    float score = 0;
  };
  std::vector<DuplicatePair> find_duplicates(float threshold, int64_t neighbours = 10) const;

 private:
  std::filesystem::path dir_;
  embed::FeatureSpec spec_;
  std::string factory_;
  std::unique_ptr<VectorIndex> vectors_;
  std::unique_ptr<Catalog> catalog_;
};

}  // namespace vtl::search

#pragma once
// Feature extraction to files (docs/architecture.md, "Files written"):
//   features.npy     float32 or float16 [rows, dim], row i = manifest line i
//   manifest.jsonl   {"item": k, "path": "...", "label": 3, "class": "dog"} per row
//                    (item = index in the full input list; label null when unlabelled)
//   features.json    {"format": "vtl-features", "version": 1, "spec": FeatureSpec,
//                     "rows", "dtype", "classes", "items", "items_sha256",
//                     "shard": {"index", "count", "begin", "end"}, "skipped"}
//   skipped.jsonl    files that could not be decoded (only with skip_bad)
// Work is done in chunks kept under `<out>/.partial/`, each written atomically; a rerun
// with the same input and settings skips finished chunks. features.json is written last:
// a folder with it is complete.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "vtl/data/dataset.h"
#include "vtl/dist/process_group.h"
#include "vtl/embed/extractor.h"
#include "vtl/embed/npy.h"

namespace vtl::embed {

/// One input image.
struct ImageItem {
  std::filesystem::path path;
  int64_t label = -1;      ///< class id, -1 when unlabelled
  std::string class_name;  ///< empty when unlabelled
};

struct ExtractOptions {
  int64_t batch_size = 32;
  /// Rows per resumable chunk (a multiple of nothing in particular; 256 keeps the redo
  /// after an interruption short).
  int64_t chunk_rows = 256;
  FeatureDtype dtype = FeatureDtype::f32;
  /// This job's part of the items: contiguous range [index * n / count, (index+1) * n / count).
  int shard_index = 0;
  int shard_count = 1;
  /// Undecodable files are listed in skipped.jsonl instead of stopping the job.
  bool skip_bad = false;
  /// Replace a finished or partial extraction made with other settings.
  bool overwrite = false;
  /// Class names stored in features.json (index = label).
  std::vector<std::string> classes;
  /// Called after each chunk: (items done in this shard, items in this shard). May throw
  /// to stop the job; finished chunks are kept.
  std::function<void(int64_t, int64_t)> progress;
};

struct ExtractResult {
  int64_t rows = 0;            ///< rows in features.npy
  int64_t computed_items = 0;  ///< items embedded by this call
  int64_t resumed_items = 0;   ///< items found already done
  int64_t skipped = 0;         ///< undecodable files left out
};

ExtractResult extract_features(FeatureExtractor& extractor, const std::vector<ImageItem>& items,
                               const std::filesystem::path& out, const ExtractOptions& options);

/// Data-parallel extraction (docs/distributed.md): every rank of `group` calls it with the
/// same items and options; rank r extracts shard r of group.size() into
/// out/.ranks/<r>-of-<n> (resumable like any shard), rank 0 merges the shards into `out`
/// (equal to a single-process run) and removes them, and every rank returns after the
/// merge. `out` must be one folder every rank writes to (a shared file system across
/// machines). A finished `out` is replaced only with `overwrite`. Returns this rank's part
/// of the work, with `rows` = the merged rows.
ExtractResult extract_features_distributed(FeatureExtractor& extractor,
                                           const std::vector<ImageItem>& items,
                                           const std::filesystem::path& out, ExtractOptions options,
                                           dist::ProcessGroup& group);

/// A finished features folder, loaded.
struct FeatureSet {
  torch::Tensor features;       ///< float32 [rows, dim]
  std::vector<ImageItem> rows;  ///< manifest, one per feature row
  std::vector<int64_t> items;   ///< manifest "item" per row
  std::vector<std::string> classes;
  FeatureSpec spec;
  nlohmann::json json;  ///< features.json
};

/// Reads a folder written by extract_features (or merge_feature_shards); throws
/// vtl::Error naming the missing or inconsistent file.
FeatureSet load_features(const std::filesystem::path& dir);

/// Throws vtl::Error naming `source` and the first row of `rows` ([N, ...]) that holds a
/// NaN or an infinity; load_features checks every features.npy with it.
void check_finite_rows(const torch::Tensor& rows, const std::string& source);

/// Concatenates the folders of shards 0..n-1 of one extraction (same input list and
/// spec, every shard present once) into `out`, which then equals an unsharded run.
void merge_feature_shards(const std::vector<std::filesystem::path>& shards,
                          const std::filesystem::path& out);

/// The images of a dataset as items with absolute paths, and the class names: a
/// class-folder tree or a CSV list gives labelled items (see vtl/data/dataset.h); a folder
/// without subfolders, or a CSV without a label column (data::csv_list_is_labelled), gives
/// its images unlabelled (label -1, no class names), and one image file gives itself. Files and
/// folders the listing had to leave out (unreadable, symlink loops, missing CSV rows) are
/// appended to `left_out` when given. `source` says where labels are when the layout does
/// not (CSV columns by name, or labels in file names: data::LabelSource).
std::vector<ImageItem> dataset_items(const std::filesystem::path& data,
                                     std::vector<std::string>* classes = nullptr,
                                     std::vector<data::SkippedFile>* left_out = nullptr,
                                     const data::LabelSource& source = {});

/// Parses "i/n" (0 <= i < n) into {i, n}; throws vtl::Error otherwise.
std::pair<int, int> parse_shard(const std::string& text);

/// Fingerprint of an item list (paths and labels, in order).
std::string items_fingerprint(const std::vector<ImageItem>& items);

}  // namespace vtl::embed

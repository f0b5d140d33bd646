#pragma once
// Which pretrained backbone fits my data? (`vtl compare`). For each candidate model with
// weights at hand: extract pooled features of the user's labelled images once (the
// embeddings path; cached in out/features/<model>/ and reused by later runs), fit a linear
// probe with stratified k-fold cross-validation (the same cross_validate as `vtl classify
// fit --cv`), and measure on this machine (on the chosen device) the backbone's
// milliseconds per image at batch 1 and 32. Parameters, size and GFLOPs come from
// models::model_stats.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vtl/embed/classical.h"
#include "vtl/embed/extract.h"

namespace vtl::embed {

struct ComparisonOptions {
  std::vector<std::string> models = {"resnet50", "efficientnet_b0", "mobilenet_v3_large", "vgg16"};
  /// "catalogue": each model's default catalogue weights from the store ($VTL_HOME);
  /// "random": seeded random initialisation (cost figures only; accuracy is a baseline);
  /// otherwise a folder searched for <model>.pth / <model>-*.pth / <model>.*.safetensors ...
  std::string weights_from = "catalogue";
  std::string probe = "logreg";  ///< logreg, svm, knn (see parse_classical_algo)
  int folds = 5;
  int image_size = 0;          ///< crop side in pixels; 0: each weights' preset
  double budget_ms = 0;        ///< > 0: recommend only models at most this many ms/image (batch 1)
  int64_t batch_size = 32;     ///< extraction batch
  int latency_repeats = 5;     ///< timed passes per batch size (median taken)
  uint64_t seed = 0;           ///< folds and random weights
  std::string device = "cpu";  ///< extraction and latency: cpu, cuda or cuda:N
  std::filesystem::path out;   ///< features/<model>/ cache, compare.json, compare.html
  /// Progress lines ("[2/4] efficientnet_b0: extracting 120/300 images").
  std::function<void(const std::string&)> log;
};

/// One candidate's row of the table.
struct CandidateResult {
  std::string model;
  std::string weights;      ///< what was loaded (FeatureSpec::weights), empty when skipped
  std::string skip_reason;  ///< non-empty: not compared, with how to fix it
  int64_t parameters = 0;
  double size_mib = 0;
  double gmacs = 0;  ///< at the compared input size
  int64_t input_size = 0;
  int64_t feature_dim = 0;
  CrossValidation probe;
  double ms_per_image_batch1 = 0, ms_per_image_batch32 = 0;
  bool features_reused = false;  ///< features came from an earlier run's cache
  bool within_budget = true;
  bool skipped() const { return !skip_reason.empty(); }
};

struct Recommendation {
  std::string most_accurate;
  std::string fastest_near_best;   ///< fastest (batch 1) within 1 point of the best accuracy
  std::string smallest_near_best;  ///< fewest parameters within 2 points of the best
  std::string note;                ///< e.g. no model within the budget
};

struct Comparison {
  std::vector<CandidateResult> candidates;  ///< in the order of ComparisonOptions::models
  Recommendation recommendation;
  std::string probe;
  std::string device;  ///< where the features and latencies were measured ("cpu", "cuda:0")
  int folds = 0;
  int64_t images = 0;
  std::vector<std::string> classes;
  nlohmann::json to_json() const;
  /// The plain-text table and recommendation lines, as `vtl compare` prints them.
  std::string table() const;
};

/// Runs the comparison over labelled `items` (every class with at least `folds` images);
/// writes out/compare.json and out/compare.html. A model whose weights are missing or do
/// not load is skipped with the reason; unknown model names throw vtl::Error.
Comparison compare_backbones(const std::vector<ImageItem>& items,
                             const std::vector<std::string>& classes,
                             const ComparisonOptions& options);

/// The recommendation lines for already measured candidates (skipped ones ignored).
Recommendation recommend(const std::vector<CandidateResult>& candidates, double budget_ms);

/// compare.html: the table and an accuracy vs ms/image chart, one point per model, in
/// the style of a run's report.html.
std::string render_comparison_report(const Comparison& comparison);

}  // namespace vtl::embed

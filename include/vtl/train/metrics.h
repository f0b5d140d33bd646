#pragma once
// Classification metrics: loss, top-1/top-5 accuracy, per-class precision/recall/F1 and
// the confusion matrix, from logits or by running a model over a loader.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "vtl/data/loader.h"
#include "vtl/models/precision.h"
#include "vtl/models/transfer_model.h"

namespace vtl::train {

struct EvalResult {
  int64_t count = 0;
  double loss = 0;  ///< mean cross-entropy (no smoothing, no class weights)
  double top1 = 0;  ///< fraction in [0, 1]
  double top5 = 0;  ///< fraction; equals 1 with 5 classes or fewer
  std::vector<std::vector<int64_t>> confusion;  ///< [true class][predicted class]
  std::vector<double> precision, recall, f1;    ///< per class (0 where undefined)
  std::vector<int64_t> support;                 ///< true images per class
  std::vector<int64_t> labels, predicted;       ///< per sample, in loader order
  std::vector<float> confidence;                ///< softmax probability of `predicted`
  std::vector<size_t> indices;                  ///< dataset index of each sample

  /// Whether class `c` occurs among the labels or the predictions (a class that does not
  /// has no precision, recall or F1 to speak of).
  bool occurs(size_t c) const;
  /// Mean F1 over the classes that occur (scikit-learn's f1_score(average="macro")).
  double macro_f1() const;
  /// The misclassified samples (positions in `labels`), most confident first.
  std::vector<size_t> mistakes() const;
  /// {"count", "loss", "top1", "top5", "macro_f1", "per_class": [{name, precision, recall,
  ///  f1, support}], "confusion": [[...]]}
  nlohmann::json to_json(const std::vector<std::string>& classes) const;
};

/// Whether top-5 accuracy says anything with `classes` classes (with five or fewer it is
/// always 1, and reports leave it out).
inline bool top5_is_informative(size_t classes) { return classes > 5; }

/// Metrics of logits [N,K] against labels int64 [N] (all on one device).
EvalResult metrics_from_logits(const torch::Tensor& logits, const torch::Tensor& labels,
                               const std::vector<size_t>& indices = {});

/// Runs `model` without autograd over every batch of `loader` (epoch 0), under autocast to
/// `precision` (training validates in the precision it trains in); leaves the model in eval
/// mode. Logits are compared in float32.
EvalResult evaluate(models::TransferModel& model, data::Loader& loader,
                    torch::Device device = torch::kCPU,
                    models::Precision precision = models::Precision::f32);

}  // namespace vtl::train

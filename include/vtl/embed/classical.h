#pragma once
// Classical classifiers on feature vectors: linear and RBF SVM, random forest and
// k-nearest neighbours (OpenCV's ml module), and multinomial logistic regression
// (scikit-learn's LogisticRegression model: L2 penalty 1/C, L-BFGS). Features are standardized
// with the training rows' mean and std (stored with the model). Saved as a folder:
//   classifier.yml   the model (OpenCV FileStorage)
//   classifier.json  {"format": "vtl-classifier", "version": 1, "algo", "params",
//                     "classes", "spec": FeatureSpec, "mean", "std", "train_rows",
//                     "cross_validation": {...}}

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "vtl/embed/extractor.h"

namespace cv::ml {
class StatModel;
}

namespace vtl::embed {

enum class ClassicalAlgo { svm_linear, svm_rbf, random_forest, knn, logreg };
std::string to_string(ClassicalAlgo algo);
/// "svm" (linear), "svm-rbf", "rf", "knn", "logreg"; throws vtl::Error otherwise.
ClassicalAlgo parse_classical_algo(const std::string& text);

struct ClassicalParams {
  ClassicalAlgo algo = ClassicalAlgo::svm_linear;
  double c = 1.0;        ///< SVM: soft-margin C; logistic regression: inverse L2 penalty
  double gamma = 0.0;    ///< RBF SVM: kernel width; 0 = 1 / dim (standardized inputs)
  int trees = 100;       ///< random forest: number of trees
  int max_depth = 25;    ///< random forest: depth limit
  int k = 5;             ///< kNN: neighbours
  int iterations = 500;  ///< logistic regression: L-BFGS iterations at most
  uint64_t seed = 0;     ///< RNG seed (random forest bootstraps)
};
nlohmann::json to_json(const ClassicalParams& params);
ClassicalParams classical_params_from_json(const nlohmann::json& json);

/// Owns its OpenCV model; copies share it. Not thread-safe: serialize calls to one
/// classifier (OpenCV's ml models do not promise concurrent prediction).
class ClassicalClassifier {
 public:
  /// Trains on float32 [N, D] features (CPU) and N labels in [0, num_classes). Needs two
  /// or more classes; throws vtl::Error otherwise.
  static ClassicalClassifier fit(const torch::Tensor& features, const std::vector<int64_t>& labels,
                                 int64_t num_classes, const ClassicalParams& params);
  /// Predicted class per row of float32 [N, D] features (D = dim()), N labels.
  std::vector<int64_t> predict(const torch::Tensor& features) const;

  /// Writes classifier.yml and classifier.json into `dir` (each atomically, json last).
  /// `extra` is merged into classifier.json (classes, spec, cross-validation report).
  void save(const std::filesystem::path& dir, const nlohmann::json& extra) const;
  /// Reads a saved folder; `json` (optional) receives classifier.json.
  static ClassicalClassifier load(const std::filesystem::path& dir, nlohmann::json* json = nullptr);

  const ClassicalParams& params() const { return params_; }
  /// What the user should know about the fit (a logistic regression that ran out of
  /// iterations); empty when there is nothing to say.
  const std::string& warning() const { return warning_; }
  int64_t dim() const { return mean_.size(0); }

 private:
  cv::Mat standardize(const torch::Tensor& features) const;
  ClassicalParams params_;
  torch::Tensor mean_, std_;
  int64_t num_classes_ = 0;
  std::string warning_;
  std::shared_ptr<cv::ml::StatModel> model_;
};

/// Accuracy and confusion counts of predictions against labels.
struct Evaluation {
  double accuracy = 0;
  std::vector<std::vector<int64_t>> confusion;  ///< [true class][predicted class]
  nlohmann::json to_json(const std::vector<std::string>& classes) const;
};
Evaluation evaluate_predictions(const std::vector<int64_t>& predicted,
                                const std::vector<int64_t>& labels, int64_t num_classes);

/// Stratified k-fold cross-validation: each class's rows are shuffled with `seed` and
/// dealt round-robin into `folds` folds; fold f is the test set once.
struct CrossValidation {
  int folds = 0;
  std::vector<double> fold_accuracy;
  double mean_accuracy = 0;
  double std_accuracy = 0;
  nlohmann::json to_json() const;
};
CrossValidation cross_validate(const torch::Tensor& features, const std::vector<int64_t>& labels,
                               int64_t num_classes, const ClassicalParams& params, int folds,
                               uint64_t seed);

}  // namespace vtl::embed

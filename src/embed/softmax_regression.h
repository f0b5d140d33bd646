#pragma once
// Multinomial logistic regression with an L2 penalty, the model of scikit-learn's
// LogisticRegression(C=c) (its default lbfgs solver): weights W [D, K] and intercepts
// b [K] minimise
//   mean_i cross_entropy(softmax(x_i W + b), y_i) + ||W||^2 / (2 C N)
// (b unpenalised), found with L-BFGS in float64. The objective is strictly convex, so
// the minimum is one point whatever the solver. An OpenCV StatModel, so that
// ClassicalClassifier trains, predicts and saves it as it does OpenCV's own models.

#include <cstdint>

#include <opencv2/ml.hpp>

namespace vtl::embed {

class SoftmaxRegression : public cv::ml::StatModel {
 public:
  /// `c`: inverse penalty (> 0); `max_iterations`: L-BFGS iterations at most;
  /// `num_classes`: K, which may exceed the largest label seen in training.
  SoftmaxRegression(double c, int max_iterations, int64_t num_classes);

  /// `data`: CV_32F samples [N, D] (rows) and labels 0..K-1 as responses (any numeric type).
  bool train(const cv::Ptr<cv::ml::TrainData>& data, int flags = 0) override;
  /// `samples` CV_32F [N, D]; `results`: CV_32F [N, 1] predicted class. Returns the first.
  float predict(cv::InputArray samples, cv::OutputArray results = cv::noArray(),
                int flags = 0) const override;
  /// Class probabilities, CV_64F [N, K].
  cv::Mat probabilities(const cv::Mat& samples) const;

  int getVarCount() const override { return weights_.rows; }
  bool isTrained() const override { return !weights_.empty(); }
  bool isClassifier() const override { return true; }
  bool empty() const override { return !isTrained(); }
  cv::String getDefaultName() const override { return "vtl_softmax_regression"; }
  void write(cv::FileStorage& fs) const override;
  void read(const cv::FileNode& node) override;

  const cv::Mat& weights() const { return weights_; }
  const cv::Mat& bias() const { return bias_; }
  /// Whether the last train() reached the gradient tolerance before max_iterations.
  bool converged() const { return converged_; }
  /// L-BFGS iterations the last train() took.
  int iterations() const { return iterations_; }

 private:
  double c_;
  int max_iterations_;
  int64_t num_classes_;
  cv::Mat weights_;  ///< CV_64F [D, K]
  cv::Mat bias_;     ///< CV_64F [1, K]
  bool converged_ = false;
  int iterations_ = 0;
};

}  // namespace vtl::embed

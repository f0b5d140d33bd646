#include "embed/softmax_regression.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <torch/torch.h>

#include "vtl/core/error.h"

namespace vtl::embed {
namespace {

/// Largest absolute gradient entry at which the minimum counts as found (scikit-learn's
/// lbfgs stops at 1e-4 on the same mean objective).
constexpr double kGradientTolerance = 1e-5;

}  // namespace

SoftmaxRegression::SoftmaxRegression(double c, int max_iterations, int64_t num_classes)
    : c_(c), max_iterations_(max_iterations), num_classes_(num_classes) {}

bool SoftmaxRegression::train(const cv::Ptr<cv::ml::TrainData>& data, int) {
  const cv::Mat samples = data->getTrainSamples().clone();
  cv::Mat responses;
  data->getTrainResponses().convertTo(responses, CV_64F);
  VTL_CHECK(samples.type() == CV_32F && responses.total() == size_t(samples.rows),
            "logistic regression: expected float samples and one label per row");
  const int64_t n = samples.rows, d = samples.cols, k = num_classes_;
  const auto x = torch::from_blob(const_cast<float*>(samples.ptr<float>()), {n, d}, torch::kFloat32)
                     .to(torch::kFloat64);
  const auto y =
      torch::from_blob(responses.ptr<double>(), {n}, torch::kFloat64).round().to(torch::kInt64);
  VTL_CHECK(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < k,
            "logistic regression: labels must lie in [0, {})", k);

  const torch::AutoGradMode gradients(true);
  auto weights = torch::zeros({d, k}, torch::kFloat64).requires_grad_();
  auto bias = torch::zeros({k}, torch::kFloat64).requires_grad_();
  const double penalty = 1.0 / (2.0 * c_ * double(n));
  const auto objective = [&] {
    return torch::nn::functional::cross_entropy(x.mm(weights) + bias, y) +
           penalty * weights.pow(2).sum();
  };
  // One L-BFGS iteration per step() (its curvature history persists between calls); the
  // stopping rule is ours: the gradient at the accepted point.
  torch::optim::LBFGS solver({weights, bias}, torch::optim::LBFGSOptions(1.0)
                                                  .max_iter(1)
                                                  .history_size(10)
                                                  .tolerance_grad(0)
                                                  .tolerance_change(0)
                                                  .line_search_fn("strong_wolfe"));
  const auto closure = [&] {
    solver.zero_grad();
    auto loss = objective();
    loss.backward();
    return loss;
  };
  // The objective and its largest gradient entry at the current point, in one pass.
  const auto measure = [&] {
    const auto loss = objective();
    const auto g = torch::autograd::grad({loss}, {weights, bias});
    return std::make_pair(loss.item<double>(), std::max(g[0].abs().max().item<double>(),
                                                        g[1].abs().max().item<double>()));
  };
  auto [previous, gradient] = measure();
  converged_ = gradient <= kGradientTolerance;
  for (iterations_ = 0; !converged_ && iterations_ < max_iterations_;) {
    solver.step(closure);
    ++iterations_;
    const auto [loss, largest] = measure();
    converged_ = largest <= kGradientTolerance;
    if (!(loss < previous)) break;  // no progress left at float64 precision
    previous = loss;
  }
  weights_ = cv::Mat(int(d), int(k), CV_64F);
  bias_ = cv::Mat(1, int(k), CV_64F);
  const auto w = weights.detach().contiguous(), b = bias.detach().contiguous();
  std::copy_n(w.data_ptr<double>(), d * k, weights_.ptr<double>());
  std::copy_n(b.data_ptr<double>(), k, bias_.ptr<double>());
  return true;
}

cv::Mat SoftmaxRegression::probabilities(const cv::Mat& samples) const {
  VTL_CHECK(isTrained() && samples.cols == weights_.rows,
            "logistic regression: expected {} values per row, got {}", weights_.rows, samples.cols);
  cv::Mat x, logits;
  samples.convertTo(x, CV_64F);
  cv::gemm(x, weights_, 1.0, cv::repeat(bias_, x.rows, 1), 1.0, logits);
  for (int i = 0; i < logits.rows; ++i) {
    cv::Mat row = logits.row(i);
    double top = 0;
    cv::minMaxLoc(row, nullptr, &top);
    cv::exp(row - top, row);
    row /= cv::sum(row)[0];
  }
  return logits;
}

float SoftmaxRegression::predict(cv::InputArray samples, cv::OutputArray results, int) const {
  const cv::Mat p = probabilities(samples.getMat());
  cv::Mat classes(p.rows, 1, CV_32F);
  for (int i = 0; i < p.rows; ++i) {
    cv::Point best;
    cv::minMaxLoc(p.row(i), nullptr, nullptr, nullptr, &best);
    classes.at<float>(i) = float(best.x);
  }
  if (results.needed()) classes.copyTo(results);
  return p.rows ? classes.at<float>(0) : 0.f;
}

void SoftmaxRegression::write(cv::FileStorage& fs) const {
  fs << "c" << c_ << "max_iterations" << max_iterations_ << "num_classes" << int(num_classes_)
     << "converged" << int(converged_) << "iterations" << iterations_ << "weights" << weights_
     << "bias" << bias_;
}

void SoftmaxRegression::read(const cv::FileNode& node) {
  cv::Mat weights, bias;
  int num_classes = 0;
  node["c"] >> c_;
  node["max_iterations"] >> max_iterations_;
  node["num_classes"] >> num_classes;
  node["weights"] >> weights;
  node["bias"] >> bias;
  // Anything inconsistent leaves the model untrained, which its reader reports.
  weights_.release();
  if (weights.type() != CV_64F || bias.type() != CV_64F || num_classes < 2 ||
      weights.cols != num_classes || bias.rows != 1 || bias.cols != num_classes)
    return;
  num_classes_ = num_classes;
  weights_ = weights;
  bias_ = bias;
}

}  // namespace vtl::embed

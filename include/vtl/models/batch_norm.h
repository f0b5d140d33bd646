#pragma once
// BatchNorm2d with torchvision's state-dict names, and folding it into the convolution
// before it wherever it only normalizes with running statistics: for inference, and for
// the frozen part of a network while the rest trains.

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

namespace vtl::models {

/// torch.nn.BatchNorm2d (affine, tracking running statistics): parameters `weight`,
/// `bias` [C] and buffers `running_mean`, `running_var` [C], `num_batches_tracked` []
/// (int64), registered in that order. [N, C, H, W] -> same shape.
///
/// Folded, it is the identity: its eval-mode transform lives in the convolution before
/// it. A folded layer refuses to run in training mode.
class BatchNorm2dImpl : public torch::nn::Module {
 public:
  BatchNorm2dImpl(int64_t num_features, double eps = 1e-5, double momentum = 0.1);

  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  /// Folds this layer's eval-mode transform into `conv`, whose output it normalizes: conv
  /// gets a new weight (scaled per output channel) and bias, both with requires_grad false.
  /// keep_original: the conv's own tensors are kept (not copied) for unfold(). Throws
  /// vtl::Error when the channels differ or it is already folded.
  void fold_into(torch::nn::Conv2dImpl& conv, bool keep_original = false);
  /// Gives the convolution its original tensors back (the same objects, so bitwise the
  /// same weights) and normalizes again. Only after fold_into(conv, true).
  void unfold();
  bool folded() const { return folded_; }

  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  int64_t num_features_;
  double eps_;
  double momentum_;
  bool folded_ = false;
  /// Set while folded with keep_original: the convolution and its own weight and bias
  /// (bias undefined for a bias-free convolution).
  std::shared_ptr<torch::nn::Conv2dImpl> folded_conv_;
  torch::Tensor original_weight_, original_bias_;
};
TORCH_MODULE(BatchNorm2d);

/// Folds every BatchNorm2d below `root` into the Conv2d registered just before it in the
/// same parent (how every family here, like torchvision, pairs them: `conv1`/`bn1`,
/// Sequential `0`/`1`), for good. For inference only: the result computes the eval-mode
/// network with one pass less per BatchNorm, and its conv weights are no longer the loaded
/// ones, so it must not be trained or saved. Throws vtl::Error when a BatchNorm is in
/// training mode. Returns the number of layers folded.
int64_t fold_batch_norms(torch::nn::Module& root);

/// Whether a BatchNorm2d below `root` is folded (fold_batch_norms, or a FoldedBatchNorms
/// alive): its conv weights are then not the network's own.
bool has_folded_batch_norms(torch::nn::Module& root);

/// Folds, for as long as it lives, the pairs below `root` that are frozen: the
/// convolution's and the BatchNorm's parameters have requires_grad false and the
/// BatchNorm is in eval mode (a frozen base while its head or last blocks train). The
/// destructor gives every convolution its own tensors back, so what is saved or trained
/// afterwards is the unfolded network, bit for bit. Keeps the original conv weights
/// alongside the folded ones meanwhile (one more copy of the frozen conv weights).
class FoldedBatchNorms {
 public:
  explicit FoldedBatchNorms(torch::nn::Module& root);
  ~FoldedBatchNorms();
  FoldedBatchNorms(const FoldedBatchNorms&) = delete;
  FoldedBatchNorms& operator=(const FoldedBatchNorms&) = delete;

  int64_t count() const { return int64_t(folded_.size()); }

 private:
  std::vector<std::shared_ptr<BatchNorm2dImpl>> folded_;
};

}  // namespace vtl::models

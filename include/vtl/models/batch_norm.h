#pragma once
// BatchNorm2d with torchvision's state_dict names, and folding it into the convolution
// before it for inference.

#include <cstdint>

#include <torch/torch.h>

namespace vtl::models {

/// torch.nn.BatchNorm2d (affine, tracking running statistics): parameters `weight`,
/// `bias` [C] and buffers `running_mean`, `running_var` [C], `num_batches_tracked` []
/// (int64), registered in that order. [N, C, H, W] -> same shape.
///
/// After fold_batch_norms() it is the identity: its scale and shift live in the
/// convolution before it. A folded layer refuses to run in training mode.
class BatchNorm2dImpl : public torch::nn::Module {
 public:
  BatchNorm2dImpl(int64_t num_features, double eps = 1e-5, double momentum = 0.1);

  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  /// Folds this layer's inference transform into `conv`, whose output it normalizes:
  /// conv.weight is scaled per output channel and conv gets (or updates) a bias with
  /// requires_grad false. Throws vtl::Error when the channels differ or it is folded.
  void fold_into(torch::nn::Conv2dImpl& conv);
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
};
TORCH_MODULE(BatchNorm2d);

/// Folds every BatchNorm2d below `root` into the Conv2d registered just before it in the
/// same parent (how every family here, like torchvision, pairs them: `conv1`/`bn1`,
/// Sequential `0`/`1`). For inference only: the result computes the eval-mode network
/// with one pass less per BatchNorm, and its conv weights are no longer the loaded ones,
/// so it must not be trained or saved. Returns the number of layers folded.
int64_t fold_batch_norms(torch::nn::Module& root);

}  // namespace vtl::models

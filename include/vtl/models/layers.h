#pragma once
// Building blocks shared by the families, with torchvision's defaults.

#include <torch/torch.h>

namespace vtl::models {

/// Conv2d without bias; padding defaults to "same" for odd kernels ((k-1)/2 * dilation).
torch::nn::Conv2d conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel,
                         int64_t stride = 1, int64_t padding = -1, int64_t groups = 1,
                         bool bias = false);

/// BatchNorm2d with torchvision's eps 1e-5 and momentum 0.1 unless given.
torch::nn::BatchNorm2d batch_norm(int64_t channels, double eps = 1e-5, double momentum = 0.1);

/// Linear with bias (PyTorch's default init).
torch::nn::Linear linear(int64_t in_features, int64_t out_features);

/// Rounds `value` to a multiple of `divisor`, never below 90% of it (torchvision's
/// _make_divisible, used by MobileNet and EfficientNet).
int64_t make_divisible(double value, int64_t divisor = 8, int64_t min_value = -1);

}  // namespace vtl::models

#include "vtl/models/layers.h"

namespace vtl::models {

torch::nn::Conv2d conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel,
                         int64_t stride, int64_t padding, int64_t groups, bool bias) {
  if (padding < 0) padding = (kernel - 1) / 2;
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel)
                               .stride(stride)
                               .padding(padding)
                               .groups(groups)
                               .bias(bias));
}

torch::nn::BatchNorm2d batch_norm(int64_t channels, double eps, double momentum) {
  return torch::nn::BatchNorm2d(
      torch::nn::BatchNorm2dOptions(channels).eps(eps).momentum(momentum));
}

torch::nn::Linear linear(int64_t in_features, int64_t out_features) {
  return torch::nn::Linear(torch::nn::LinearOptions(in_features, out_features));
}

int64_t make_divisible(double value, int64_t divisor, int64_t min_value) {
  if (min_value < 0) min_value = divisor;
  int64_t rounded = std::max(min_value, (static_cast<int64_t>(value + divisor / 2.0) / divisor) * divisor);
  if (rounded < 0.9 * value) rounded += divisor;
  return rounded;
}

}  // namespace vtl::models

#pragma once
// Building blocks shared by the families, with torchvision's defaults.

#include <torch/torch.h>

#include "vtl/models/batch_norm.h"

namespace vtl::models {

/// Conv2d without bias; padding defaults to "same" for odd kernels ((k-1)/2 * dilation).
torch::nn::Conv2d conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel,
                         int64_t stride = 1, int64_t padding = -1, int64_t groups = 1,
                         bool bias = false);

/// BatchNorm2d with torchvision's eps 1e-5 and momentum 0.1 unless given.
BatchNorm2d batch_norm(int64_t channels, double eps = 1e-5, double momentum = 0.1);

/// Linear with bias (PyTorch's default init).
torch::nn::Linear linear(int64_t in_features, int64_t out_features);

/// torchvision's initialisation of every conv below `module`: kaiming_normal_(fan_out,
/// gain sqrt(2)) and zero bias; BatchNorm weight 1, bias 0. Linear layers are left alone
/// (their init differs per family).
void init_conv_bn(torch::nn::Module& module);

/// Rounds `value` to a multiple of `divisor`, never below 90% of it (torchvision's
/// _make_divisible, used by MobileNet and EfficientNet).
int64_t make_divisible(double value, int64_t divisor = 8, int64_t min_value = -1);

/// Activations by torchvision's names; `none` is the identity.
enum class Activation { none, relu, relu6, silu, hardswish, sigmoid, hardsigmoid };

/// Applies `activation` to `x` (same shape).
torch::Tensor activate(const torch::Tensor& x, Activation activation);
/// The same, overwriting `x` (torchvision's `inplace=True`): for a tensor nothing else
/// reads afterwards, such as a BatchNorm's or linear layer's fresh output. Saves an
/// allocation of the activation map per layer.
torch::Tensor activate_(torch::Tensor x, Activation activation);

/// A Sequential with a plain `Tensor forward(Tensor)`, so it can sit inside another
/// Sequential (LibTorch cannot nest nn::Sequential, whose forward is a template).
/// Children are named "0", "1", ... like torch.nn.Sequential's.
class SequentialBlockImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return torch::nn::SequentialImpl::forward(x); }
};
TORCH_MODULE(SequentialBlock);

/// torchvision's Conv2dNormActivation: Sequential of conv ("0", no bias, "same" padding),
/// BatchNorm ("1") and the activation ("2", omitted for Activation::none), so state_dict
/// keys read `<prefix>.0.weight`, `<prefix>.1.running_mean`. Nestable in a Sequential.
SequentialBlock conv_norm_act(int64_t in_channels, int64_t out_channels, int64_t kernel,
                              int64_t stride = 1, int64_t groups = 1,
                              Activation activation = Activation::relu, double eps = 1e-5,
                              double momentum = 0.1);

/// torchvision's SqueezeExcitation (Hu et al. 2018): global average pool, 1x1 conv `fc1`
/// (channels -> squeeze_channels), `activation`, 1x1 conv `fc2` (back to channels),
/// `scale_activation`; the result scales the input per channel. [N,C,H,W] -> [N,C,H,W].
/// EfficientNet: SiLU + sigmoid; MobileNetV3: ReLU + hardsigmoid.
class SqueezeExcitationImpl : public torch::nn::Module {
 public:
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze_channels,
                        Activation activation = Activation::relu,
                        Activation scale_activation = Activation::sigmoid);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};

 private:
  Activation activation_;
  Activation scale_activation_;
};
TORCH_MODULE(SqueezeExcitation);

}  // namespace vtl::models

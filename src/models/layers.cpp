#include "vtl/models/layers.h"

namespace vtl::models {

torch::nn::Conv2d conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                         int64_t padding, int64_t groups, bool bias) {
  if (padding < 0) padding = (kernel - 1) / 2;
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel)
                               .stride(stride)
                               .padding(padding)
                               .groups(groups)
                               .bias(bias));
}

BatchNorm2d batch_norm(int64_t channels, double eps, double momentum) {
  return BatchNorm2d(channels, eps, momentum);
}

torch::nn::Linear linear(int64_t in_features, int64_t out_features) {
  return torch::nn::Linear(torch::nn::LinearOptions(in_features, out_features));
}

void init_conv_bn(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& sub : module.modules(/*include_self=*/false)) {
    if (auto* conv = sub->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* bn = sub->as<BatchNorm2d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
}

int64_t make_divisible(double value, int64_t divisor, int64_t min_value) {
  if (min_value < 0) min_value = divisor;
  int64_t rounded =
      std::max(min_value, (static_cast<int64_t>(value + divisor / 2.0) / divisor) * divisor);
  if (rounded < 0.9 * value) rounded += divisor;
  return rounded;
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::none:
      return x;
    case Activation::relu:
      return torch::relu(x);
    case Activation::relu6:
      return torch::hardtanh(x, 0.0, 6.0);
    case Activation::silu:
      return torch::silu(x);
    case Activation::hardswish:
      return torch::hardswish(x);
    case Activation::sigmoid:
      return torch::sigmoid(x);
    case Activation::hardsigmoid:
      return torch::hardsigmoid(x);
  }
  return x;
}

torch::Tensor activate_(torch::Tensor x, Activation activation) {
  switch (activation) {
    case Activation::none:
      return x;
    case Activation::relu:
      return x.relu_();
    case Activation::relu6:
      return torch::hardtanh_(x, 0.0, 6.0);
    case Activation::silu:
      return torch::silu_(x);
    case Activation::hardswish:
      return torch::hardswish_(x);
    case Activation::sigmoid:
      return x.sigmoid_();
    case Activation::hardsigmoid:
      return torch::hardsigmoid_(x);
  }
  return x;
}

SequentialBlock conv_norm_act(int64_t in_channels, int64_t out_channels, int64_t kernel,
                              int64_t stride, int64_t groups, Activation activation, double eps,
                              double momentum) {
  SequentialBlock block(conv2d(in_channels, out_channels, kernel, stride, -1, groups),
                        batch_norm(out_channels, eps, momentum));
  if (activation != Activation::none) {
    block->push_back(torch::nn::Functional(
        [activation](torch::Tensor x) { return activate_(std::move(x), activation); }));
  }
  return block;
}

SqueezeExcitationImpl::SqueezeExcitationImpl(int64_t channels, int64_t squeeze_channels,
                                             Activation activation, Activation scale_activation)
    : activation_(activation), scale_activation_(scale_activation) {
  fc1 = register_module("fc1", conv2d(channels, squeeze_channels, 1, 1, 0, 1, /*bias=*/true));
  fc2 = register_module("fc2", conv2d(squeeze_channels, channels, 1, 1, 0, 1, /*bias=*/true));
}

torch::Tensor SqueezeExcitationImpl::forward(const torch::Tensor& x) {
  auto scale = torch::adaptive_avg_pool2d(x, {1, 1});
  scale = activate(fc1(scale), activation_);
  scale = activate(fc2(scale), scale_activation_);
  return scale * x;  // torchvision's order (ONNX consumers expect the gate first)
}

}  // namespace vtl::models

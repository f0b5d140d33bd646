// MobileNetV1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for
// Mobile Vision Applications", 2017, Table 1). Not in torchvision: layout, names and init
// follow timm's `mobilenetv1_100` (huggingface/pytorch-image-models,
// timm/models/efficientnet.py `_gen_mobilenet_v1` with arch_def dsa_r1_k3_s1_c64,
// dsa_r2_k3_s2_c128, dsa_r2_k3_s2_c256, dsa_r6_k3_s2_c512, dsa_r2_k3_s2_c1024, stem 32,
// ReLU6, no head conv; blocks from timm/models/_efficientnet_blocks.py
// `DepthwiseSeparableConv` with pw_act and no skip; init `_init_weight_goog` in
// timm/models/_efficientnet_builder.py):
//   conv_stem (3x3 s2, no bias), bn1 (BN + ReLU6),
//   blocks.S.B.{conv_dw (3x3 depthwise), bn1 (BN + ReLU6), conv_pw (1x1), bn2 (BN + ReLU6)},
//   classifier (Linear 1024 -> num_classes; timm's drop_rate is 0).
// BatchNorm has PyTorch's defaults (eps 1e-5, momentum 0.1). timm reports 4.23M parameters
// (4,231,976 at 1000 classes).

#include <torch/torch.h>

#include <cmath>

#include "vtl/core/error.h"
#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// One stage of timm's arch_def (= groups of rows of the paper's Table 1): depthwise-separable
/// blocks with `channels` outputs, `repeats` of them, the first with `stride`.
struct DsStage {
  int64_t channels, repeats, stride;
};

struct MobileNetV1Config {
  const char* name;
  double width_mult;
  std::array<DsStage, 5> stages;
  const char* recommended_use;
};

constexpr MobileNetV1Config kMobileNetV1s[] = {
    {"mobilenet_v1",
     1.0,
     {{{64, 1, 1}, {128, 2, 2}, {256, 2, 2}, {512, 6, 2}, {1024, 2, 2}}},
     "mobile / edge; simplest mobile net, plain depthwise-separable stack"},
};

constexpr int64_t kStemChannels = 32;
constexpr double kDefaultDropout = 0.0;

/// timm's round_channels: make_divisible(channels * multiplier, 8) (unchanged at 1.0).
int64_t round_channels(int64_t channels, double multiplier) {
  return make_divisible(static_cast<double>(channels) * multiplier, 8);
}

/// timm's `_init_weight_goog` for a conv: N(0, sqrt(2 / fan_out)) with
/// fan_out = k*k*out_channels / groups; bias 0.
void init_conv_goog(torch::nn::Conv2dImpl& conv) {
  torch::NoGradGuard no_grad;
  const auto& w = conv.weight;  // [out, in / groups, kh, kw]
  const int64_t fan_out = w.size(2) * w.size(3) * w.size(0) / conv.options.groups();
  torch::nn::init::normal_(conv.weight, 0.0, std::sqrt(2.0 / static_cast<double>(fan_out)));
  if (conv.bias.defined()) conv.bias.zero_();
}

/// Depthwise-separable block with activation after both convs and no shortcut (timm "dsa"):
/// [N,in,H,W] -> [N,out,H/s,W/s].
class DepthwiseSeparableImpl : public torch::nn::Module {
 public:
  DepthwiseSeparableImpl(int64_t in_channels, int64_t out_channels, int64_t stride) {
    conv_dw = register_module("conv_dw", conv2d(in_channels, in_channels, 3, stride, -1,
                                                /*groups=*/in_channels));
    bn1 = register_module("bn1", batch_norm(in_channels));
    conv_pw = register_module("conv_pw", conv2d(in_channels, out_channels, 1));
    bn2 = register_module("bn2", batch_norm(out_channels));
  }

  torch::Tensor forward(torch::Tensor x) {
    x = activate_(bn1(conv_dw(x)), Activation::relu6);
    return activate_(bn2(conv_pw(x)), Activation::relu6);
  }

  torch::nn::Conv2d conv_dw{nullptr}, conv_pw{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
};
TORCH_MODULE(DepthwiseSeparable);

class MobileNetV1Impl : public ModelImpl {
 public:
  MobileNetV1Impl(const MobileNetV1Config& config, ModelInfo info, const ModelOptions& options)
      : ModelImpl(std::move(info), options),
        dropout_(options.dropout() >= 0 ? options.dropout() : kDefaultDropout) {
    VTL_CHECK(!options_.include_top() || options_.pooling() != Pooling::none,
              "{}: include_top needs pooling avg or max (got none)", name());
    int64_t in_channels = round_channels(kStemChannels, config.width_mult);
    conv_stem = register_module("conv_stem", conv2d(3, in_channels, 3, 2));
    bn1 = register_module("bn1", batch_norm(in_channels));
    stages_.push_back({"stem", [this](torch::Tensor x) {
                         return activate_(bn1(conv_stem(x)), Activation::relu6);
                       }});
    blocks = register_module("blocks", torch::nn::Sequential());
    // One tap per timm stage: stage1 /2 (64 ch), stage2 /4 (128), stage3 /8 (256),
    // stage4 /16 (512), stage5 /32 (1024).
    for (size_t s = 0; s < config.stages.size(); ++s) {
      const auto& stage = config.stages[s];
      const int64_t out_channels = round_channels(stage.channels, config.width_mult);
      SequentialBlock stack;
      for (int64_t b = 0; b < stage.repeats; ++b) {
        stack->push_back(DepthwiseSeparable(in_channels, out_channels, b == 0 ? stage.stride : 1));
        in_channels = out_channels;
      }
      blocks->push_back(stack);
      stages_.push_back({"stage" + std::to_string(s + 1),
                         [stack](torch::Tensor x) mutable { return stack->forward(x); }});
    }
    for (auto& sub : modules(/*include_self=*/false)) {
      if (auto* conv = sub->as<torch::nn::Conv2d>()) {
        init_conv_goog(*conv);
      } else if (auto* bn = sub->as<BatchNorm2d>()) {
        torch::NoGradGuard no_grad;
        bn->weight.fill_(1.0);
        bn->bias.zero_();
      }
    }
    reset_classifier(options_.include_top() ? options_.num_classes() : 0);
  }

  /// pool(features) -> [N, 1024] (= pre_logits); with a top, dropout (timm's drop_rate,
  /// 0 by default) then the classifier.
  torch::Tensor forward_head(torch::Tensor features_map, bool pre_logits) override {
    auto x = pool(features_map);
    if (!classifier) return x;
    if (dropout_ > 0) x = torch::dropout(x, dropout_, is_training());
    return pre_logits ? x : classifier(x);
  }

  void reset_classifier(int64_t num_classes) override {
    if (classifier) unregister_module("classifier");
    classifier = nullptr;
    options_.include_top(num_classes > 0);
    if (num_classes <= 0) return;
    options_.num_classes(num_classes);
    classifier = register_module("classifier", linear(num_features(), num_classes));
    // timm `_init_weight_goog` for Linear: U(-1/sqrt(out_features), 1/sqrt(out_features)),
    // bias 0.
    torch::NoGradGuard no_grad;
    const double range = 1.0 / std::sqrt(static_cast<double>(num_classes));
    torch::nn::init::uniform_(classifier->weight, -range, range);
    classifier->bias.zero_();
  }

  std::string classifier_prefix() const override { return "classifier"; }

  torch::nn::Conv2d conv_stem{nullptr};
  BatchNorm2d bn1{nullptr};
  torch::nn::Sequential blocks{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  double dropout_;
};

}  // namespace

void register_mobilenet_v1() {
  for (const auto& config : kMobileNetV1s) {
    ModelInfo info{config.name, "mobilenet_v1", 224,
                   round_channels(config.stages.back().channels, config.width_mult),
                   config.recommended_use};
    register_model(info, [config, info](const ModelOptions& options) {
      return make_model<MobileNetV1Impl>(config, info, options);
    });
  }
}

}  // namespace vtl::models

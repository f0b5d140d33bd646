// MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
// 2018, Table 2), torchvision's layout and names: `features.0` (conv 3x3 s2, BN, ReLU6),
// `features.1..17` inverted residual blocks (`features.N.conv.K`), `features.18` (1x1 conv
// to 1280, BN, ReLU6), `classifier.0` Dropout, `classifier.1` Linear.

#include <torch/torch.h>

#include "vtl/core/error.h"
#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// One row of the paper's Table 2: expansion t, output channels c, repeats n, stride s of
/// the first repeat.
struct BottleneckRow {
  int64_t expansion, channels, repeats, stride;
};

struct MobileNetV2Config {
  const char* name;
  double width_mult;
  std::array<BottleneckRow, 7> rows;
  const char* recommended_use;
};

constexpr MobileNetV2Config kMobileNetV2s[] = {
    {"mobilenet_v2",
     1.0,
     {{{1, 16, 1, 1},
       {6, 24, 2, 2},
       {6, 32, 3, 2},
       {6, 64, 4, 2},
       {6, 96, 3, 1},
       {6, 160, 3, 2},
       {6, 320, 1, 1}}},
     "mobile / edge; small and fast"},
};

constexpr int64_t kStemChannels = 32;
constexpr int64_t kLastChannels = 1280;
constexpr double kDefaultDropout = 0.2;

/// Inverted residual: [1x1 expand, BN, ReLU6] (absent for t = 1), 3x3 depthwise (stride s),
/// BN, ReLU6, 1x1 linear projection, BN; identity shortcut when stride 1 and in == out.
/// [N,in,H,W] -> [N,out,H/s,W/s]. Submodule `conv` holds torchvision's indices.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in_channels, int64_t out_channels, int64_t stride, int64_t expansion)
      : use_residual_(stride == 1 && in_channels == out_channels) {
    const auto hidden = in_channels * expansion;
    conv = register_module("conv", SequentialBlock());
    if (expansion != 1) {
      conv->push_back(conv_norm_act(in_channels, hidden, 1, 1, 1, Activation::relu6));
    }
    conv->push_back(conv_norm_act(hidden, hidden, 3, stride, hidden, Activation::relu6));
    conv->push_back(conv2d(hidden, out_channels, 1));
    conv->push_back(batch_norm(out_channels));
  }

  torch::Tensor forward(torch::Tensor x) {
    return use_residual_ ? x + conv->forward(x) : conv->forward(x);
  }

  SequentialBlock conv{nullptr};

 private:
  bool use_residual_;
};
TORCH_MODULE(InvertedResidual);

class MobileNetV2Impl : public ModelImpl {
 public:
  MobileNetV2Impl(const MobileNetV2Config& config, ModelInfo info, const ModelOptions& options)
      : ModelImpl(std::move(info), options),
        dropout_(options.dropout() >= 0 ? options.dropout() : kDefaultDropout) {
    VTL_CHECK(!options_.include_top() || options_.pooling() != Pooling::none,
              "{}: include_top needs pooling avg or max (got none)", name());
    features = register_module("features", torch::nn::Sequential());
    int64_t in_channels = make_divisible(kStemChannels * config.width_mult, 8);
    features->push_back(conv_norm_act(3, in_channels, 3, 2, 1, Activation::relu6));
    add_stage("stem", features, 0, 1);
    // Stages split at the stride-2 rows, so each stage tap has one resolution:
    // stage1 /2 (16 ch), stage2 /4 (24), stage3 /8 (32), stage4 /16 (96), stage5 /32 (320).
    size_t stage_begin = features->size();
    int stage = 0;
    for (const auto& row : config.rows) {
      if (row.stride > 1 && features->size() > stage_begin) {
        add_stage("stage" + std::to_string(++stage), features, stage_begin, features->size());
        stage_begin = features->size();
      }
      const int64_t out_channels = make_divisible(row.channels * config.width_mult, 8);
      for (int64_t i = 0; i < row.repeats; ++i) {
        features->push_back(
            InvertedResidual(in_channels, out_channels, i == 0 ? row.stride : 1, row.expansion));
        in_channels = out_channels;
      }
    }
    add_stage("stage" + std::to_string(++stage), features, stage_begin, features->size());
    const int64_t last = make_divisible(kLastChannels * std::max(1.0, config.width_mult), 8);
    features->push_back(conv_norm_act(in_channels, last, 1, 1, 1, Activation::relu6));
    add_stage("head_conv", features, features->size() - 1, features->size());
    init_conv_bn(*features);
    reset_classifier(options_.include_top() ? options_.num_classes() : 0);
  }

  /// pool(features) -> [N, 1280]; with a top, dropout then classifier.1.
  torch::Tensor forward_head(torch::Tensor features_map, bool pre_logits) override {
    auto x = pool(features_map);
    if (!classifier || pre_logits) return x;
    return classifier->forward(x);
  }

  void reset_classifier(int64_t num_classes) override {
    if (classifier) unregister_module("classifier");
    classifier = nullptr;
    options_.include_top(num_classes > 0);
    if (num_classes <= 0) return;
    options_.num_classes(num_classes);
    auto fc = linear(num_features(), num_classes);
    {
      torch::NoGradGuard no_grad;
      torch::nn::init::normal_(fc->weight, 0.0, 0.01);
      fc->bias.zero_();
    }
    classifier =
        register_module("classifier", torch::nn::Sequential(torch::nn::Dropout(dropout_), fc));
  }

  std::string classifier_prefix() const override { return "classifier.1"; }

  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};

 private:
  double dropout_;
};

}  // namespace

void register_mobilenet_v2() {
  for (const auto& config : kMobileNetV2s) {
    const int64_t last = make_divisible(kLastChannels * std::max(1.0, config.width_mult), 8);
    ModelInfo info{config.name, "mobilenet_v2", 224, last, config.recommended_use};
    register_model(info, [config, info](const ModelOptions& options) {
      return make_model<MobileNetV2Impl>(config, info, options);
    });
  }
}

}  // namespace vtl::models

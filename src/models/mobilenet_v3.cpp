// MobileNetV3 (Howard et al., "Searching for MobileNetV3", 2019, Table 1 = Large, Table 2 =
// Small), torchvision's layout and names: `features.0` (conv 3x3 s2, BN, hardswish),
// `features.1..` inverted residual blocks (`features.N.block.K`, squeeze-excitation as
// `block.K.fc1/fc2`), last `features.M` (1x1 conv to 6x the last block's width, BN,
// hardswish), `classifier.0` Linear, hardswish, dropout, `classifier.3` Linear. Every
// BatchNorm has eps 0.001 and momentum 0.01.

#include <torch/torch.h>

#include "vtl/core/error.h"
#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// One "bneck" row of the paper's tables (torchvision's InvertedResidualConfig at width
/// 1.0): input, kernel, expanded ("exp size"), output channels, SE, activation, stride.
struct BneckRow {
  int64_t in_channels, kernel, expanded, out_channels;
  bool squeeze_excite;
  bool hardswish;  ///< "HS" (else "RE": ReLU)
  int64_t stride;
};

struct MobileNetV3Config {
  const char* name;
  std::vector<BneckRow> rows;
  int64_t last_channels;  ///< classifier.0 width (the paper's last "FC, NBN" row)
  const char* recommended_use;
};

const std::vector<MobileNetV3Config>& mobilenet_v3_configs() {
  static const std::vector<MobileNetV3Config> configs = {
      {"mobilenet_v3_large",
       {
           {16, 3, 16, 16, false, false, 1},
           {16, 3, 64, 24, false, false, 2},
           {24, 3, 72, 24, false, false, 1},
           {24, 5, 72, 40, true, false, 2},
           {40, 5, 120, 40, true, false, 1},
           {40, 5, 120, 40, true, false, 1},
           {40, 3, 240, 80, false, true, 2},
           {80, 3, 200, 80, false, true, 1},
           {80, 3, 184, 80, false, true, 1},
           {80, 3, 184, 80, false, true, 1},
           {80, 3, 480, 112, true, true, 1},
           {112, 3, 672, 112, true, true, 1},
           {112, 5, 672, 160, true, true, 2},
           {160, 5, 960, 160, true, true, 1},
           {160, 5, 960, 160, true, true, 1},
       },
       1280,
       "mobile / edge; best accuracy per FLOP here"},
      {"mobilenet_v3_small",
       {
           {16, 3, 16, 16, true, false, 2},
           {16, 3, 72, 24, false, false, 2},
           {24, 3, 88, 24, false, false, 1},
           {24, 5, 96, 40, true, true, 2},
           {40, 5, 240, 40, true, true, 1},
           {40, 5, 240, 40, true, true, 1},
           {40, 5, 120, 48, true, true, 1},
           {48, 5, 144, 48, true, true, 1},
           {48, 5, 288, 96, true, true, 2},
           {96, 5, 576, 96, true, true, 1},
           {96, 5, 576, 96, true, true, 1},
       },
       1024,
       "mobile / edge; smallest and fastest here"},
  };
  return configs;
}

constexpr double kBnEps = 0.001;
constexpr double kBnMomentum = 0.01;
constexpr double kDefaultDropout = 0.2;

/// Inverted residual: [1x1 expand, BN, act] (absent when expanded == in), kxk depthwise
/// (stride s), BN, act, [squeeze-excitation: ReLU, hardsigmoid, squeeze width
/// make_divisible(expanded / 4)], 1x1 projection, BN; identity shortcut when stride 1 and
/// in == out. [N,in,H,W] -> [N,out,H/s,W/s]. Submodule `block` holds torchvision's indices.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  explicit InvertedResidualImpl(const BneckRow& row)
      : use_residual_(row.stride == 1 && row.in_channels == row.out_channels) {
    const auto act = row.hardswish ? Activation::hardswish : Activation::relu;
    block = register_module("block", SequentialBlock());
    if (row.expanded != row.in_channels) {
      block->push_back(
          conv_norm_act(row.in_channels, row.expanded, 1, 1, 1, act, kBnEps, kBnMomentum));
    }
    block->push_back(conv_norm_act(row.expanded, row.expanded, row.kernel, row.stride, row.expanded,
                                   act, kBnEps, kBnMomentum));
    if (row.squeeze_excite) {
      block->push_back(SqueezeExcitation(row.expanded, make_divisible(row.expanded / 4, 8),
                                         Activation::relu, Activation::hardsigmoid));
    }
    block->push_back(conv_norm_act(row.expanded, row.out_channels, 1, 1, 1, Activation::none,
                                   kBnEps, kBnMomentum));
  }

  torch::Tensor forward(torch::Tensor x) {
    auto out = block->forward(x);
    return use_residual_ ? out + x : out;
  }

  SequentialBlock block{nullptr};

 private:
  bool use_residual_;
};
TORCH_MODULE(InvertedResidual);

class MobileNetV3Impl : public ModelImpl {
 public:
  MobileNetV3Impl(const MobileNetV3Config& config, ModelInfo info, const ModelOptions& options)
      : ModelImpl(std::move(info), options),
        last_channels_(config.last_channels),
        dropout_(options.dropout() >= 0 ? options.dropout() : kDefaultDropout) {
    VTL_CHECK(!options_.include_top() || options_.pooling() != Pooling::none,
              "{}: include_top needs pooling avg or max (got none)", name());
    features = register_module("features", torch::nn::Sequential());
    const auto& rows = config.rows;
    features->push_back(conv_norm_act(3, rows.front().in_channels, 3, 2, 1, Activation::hardswish,
                                      kBnEps, kBnMomentum));
    add_stage("stem", features, 0, 1);
    // Stages split before each stride-2 block, so each stage tap has one resolution.
    // Large: stage1 /2 (16 ch), stage2 /4 (24), stage3 /8 (40), stage4 /16 (112),
    // stage5 /32 (160). Small: stage1 /4 (16), stage2 /8 (24), stage3 /16 (48), stage4 /32 (96).
    size_t stage_begin = features->size();
    int stage = 0;
    for (const auto& row : rows) {
      if (row.stride > 1 && features->size() > stage_begin) {
        add_stage("stage" + std::to_string(++stage), features, stage_begin, features->size());
        stage_begin = features->size();
      }
      features->push_back(InvertedResidual(row));
    }
    add_stage("stage" + std::to_string(++stage), features, stage_begin, features->size());
    features->push_back(conv_norm_act(rows.back().out_channels, num_features(), 1, 1, 1,
                                      Activation::hardswish, kBnEps, kBnMomentum));
    add_stage("head_conv", features, features->size() - 1, features->size());
    init_conv_bn(*features);
    reset_classifier(options_.include_top() ? options_.num_classes() : 0);
  }

  /// pool(features) -> [N, 6 * last block width] (576 / 960); with a top, classifier.0,
  /// hardswish, dropout ([N, 1024 / 1280] = pre_logits), classifier.3.
  torch::Tensor forward_head(torch::Tensor features_map, bool pre_logits) override {
    auto x = pool(features_map);
    if (!classifier) return x;
    auto it = classifier->begin();
    for (int i = 0; i < 3; ++i) x = (it + i)->forward(x);
    if (pre_logits) return x;
    return (it + 3)->forward(x);
  }

  /// Replaces classifier.3 only (classifier.0 keeps its weights); 0 removes the whole
  /// classifier, so the state_dict equals that of a model built with include_top false.
  void reset_classifier(int64_t num_classes) override {
    options_.include_top(num_classes > 0);
    if (num_classes <= 0) {
      if (classifier) unregister_module("classifier");
      classifier = nullptr;
      return;
    }
    options_.num_classes(num_classes);
    auto fc = linear(last_channels_, num_classes);
    init_linear(*fc);
    torch::nn::Sequential head;
    if (classifier) {
      for (int i = 0; i < 3; ++i) head->push_back(*(classifier->begin() + i));
    } else {
      auto hidden = linear(num_features(), last_channels_);
      init_linear(*hidden);
      head->push_back(hidden);
      head->push_back(torch::nn::Functional(
          [](torch::Tensor x) { return activate_(std::move(x), Activation::hardswish); }));
      head->push_back(torch::nn::Dropout(dropout_));
    }
    head->push_back(fc);
    if (classifier) {
      replace_module("classifier", head);
    } else {
      register_module("classifier", head);
    }
    classifier = head;
  }

  std::string classifier_prefix() const override { return "classifier.3"; }
  int64_t pre_logits_width() const override { return classifier ? last_channels_ : num_features(); }

  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};

 private:
  /// torchvision: Linear weight ~ N(0, 0.01), bias 0.
  static void init_linear(torch::nn::LinearImpl& fc) {
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(fc.weight, 0.0, 0.01);
    fc.bias.zero_();
  }

  int64_t last_channels_;
  double dropout_;
};

}  // namespace

void register_mobilenet_v3() {
  for (const auto& config : mobilenet_v3_configs()) {
    ModelInfo info{config.name, "mobilenet_v3", 224, 6 * config.rows.back().out_channels,
                   config.recommended_use};
    register_model(info, [&config, info](const ModelOptions& options) {
      return make_model<MobileNetV3Impl>(config, info, options);
    });
  }
}

}  // namespace vtl::models

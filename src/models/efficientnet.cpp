// EfficientNet B0-B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional
// Neural Networks", ICML 2019): the B0 baseline of Table 1, scaled per variant by the
// compound coefficients (width, depth, resolution) of Section 3.3 / 4.2, with the values
// of torchvision's `_efficientnet_conf` and `efficientnet_bN` builders.
//
// torchvision's layout and names: features.0 (stem Conv-BN-SiLU), features.1..7 (MBConv
// stages; block "features.S.B.block.I" with SqueezeExcitation "fc1"/"fc2"), features.8
// (1x1 head conv), classifier.0 (Dropout), classifier.1 (Linear).

#include <cmath>

#include <torch/torch.h>

#include "vtl/core/error.h"
#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// One MBConv stage of the B0 baseline (paper Table 1, stages 2-8).
struct StageConfig {
  int64_t expand_ratio;
  int64_t kernel;
  int64_t stride;
  int64_t in_channels;
  int64_t out_channels;
  int64_t num_layers;
};

constexpr StageConfig kBaseline[] = {
    {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
    {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
};

/// One variant: compound-scaling coefficients, paper resolution, torchvision's dropout and
/// BatchNorm settings (B5-B7 use eps 1e-3 / momentum 0.01, the weights ported from TF).
struct EfficientNetConfig {
  const char* name;
  double width_mult;
  double depth_mult;
  int64_t input_size;  ///< paper's resolution (torchvision evaluates B2 at 288)
  double dropout;
  double bn_eps;
  double bn_momentum;
  const char* recommended_use;
};

constexpr EfficientNetConfig kEfficientNets[] = {
    {"efficientnet_b0", 1.0, 1.0, 224, 0.2, 1e-5, 0.1,
     "best accuracy per FLOP at 224; good default for mobile/CPU fine-tuning"},
    {"efficientnet_b1", 1.0, 1.1, 240, 0.2, 1e-5, 0.1, "slightly deeper B0 at 240 px"},
    {"efficientnet_b2", 1.1, 1.2, 260, 0.3, 1e-5, 0.1, "balanced accuracy/cost at 260-288 px"},
    {"efficientnet_b3", 1.2, 1.4, 300, 0.3, 1e-5, 0.1,
     "resnet50-level cost with higher accuracy at 300 px"},
    {"efficientnet_b4", 1.4, 1.8, 380, 0.4, 1e-5, 0.1, "high accuracy at 380 px; GPU advised"},
    {"efficientnet_b5", 1.6, 2.2, 456, 0.4, 1e-3, 0.01, "high accuracy at 456 px; GPU advised"},
    {"efficientnet_b6", 1.8, 2.6, 528, 0.5, 1e-3, 0.01, "very high accuracy at 528 px; slow"},
    {"efficientnet_b7", 2.0, 3.1, 600, 0.5, 1e-3, 0.01,
     "top accuracy at 600 px; slowest, GPU only in practice"},
};

/// Channels scaled by `mult`, rounded to a multiple of 8 (torchvision's adjust_channels).
int64_t scale_channels(int64_t channels, double mult) {
  return make_divisible(static_cast<double>(channels) * mult, 8);
}

/// Layers per stage scaled by `mult`, rounded up (torchvision's adjust_depth).
int64_t scale_depth(int64_t layers, double mult) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(layers) * mult));
}

/// Width of the head conv (= num_features): 4x the last stage's channels.
int64_t head_channels(const EfficientNetConfig& config) {
  return 4 * scale_channels(kBaseline[std::size(kBaseline) - 1].out_channels, config.width_mult);
}

/// Mobile inverted bottleneck (Sandler et al. 2018) with squeeze-and-excitation:
/// [expand 1x1 Conv-BN-SiLU] -> depthwise kxk Conv-BN-SiLU -> SE -> project 1x1 Conv-BN,
/// all in `block`; residual with row-mode stochastic depth when shapes allow.
class MBConvImpl : public torch::nn::Module {
 public:
  MBConvImpl(const StageConfig& stage, int64_t in_channels, int64_t stride,
             double stochastic_depth_prob, const EfficientNetConfig& config)
      : use_residual_(stride == 1 && in_channels == stage.out_channels),
        stochastic_depth_prob_(stochastic_depth_prob) {
    const int64_t expanded = scale_channels(in_channels, static_cast<double>(stage.expand_ratio));
    const double eps = config.bn_eps, momentum = config.bn_momentum;
    if (expanded != in_channels) {
      block->push_back(
          conv_norm_act(in_channels, expanded, 1, 1, 1, Activation::silu, eps, momentum));
    }
    block->push_back(conv_norm_act(expanded, expanded, stage.kernel, stride, expanded,
                                   Activation::silu, eps, momentum));
    block->push_back(SqueezeExcitation(expanded, std::max<int64_t>(1, in_channels / 4),
                                       Activation::silu, Activation::sigmoid));
    block->push_back(
        conv_norm_act(expanded, stage.out_channels, 1, 1, 1, Activation::none, eps, momentum));
    register_module("block", block);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = block->forward(x);
    if (!use_residual_) return out;
    if (is_training() && stochastic_depth_prob_ > 0.0) {
      // torchvision.ops.stochastic_depth(mode="row"): drop whole samples' residual branch,
      // rescale the kept ones by 1/survival.
      const double survival = 1.0 - stochastic_depth_prob_;
      std::vector<int64_t> shape(static_cast<size_t>(out.dim()), 1);
      shape[0] = out.size(0);
      auto noise = torch::empty(shape, out.options()).bernoulli_(survival);
      if (survival > 0.0) noise.div_(survival);
      out = out * noise;
    }
    return out + x;
  }

  double stochastic_depth_prob() const { return stochastic_depth_prob_; }

  SequentialBlock block;

 private:
  bool use_residual_;
  double stochastic_depth_prob_;
};
TORCH_MODULE(MBConv);

class EfficientNetImpl : public ModelImpl {
 public:
  /// torchvision's maximum stochastic-depth probability (reached by the last block).
  static constexpr double kStochasticDepthProb = 0.2;

  EfficientNetImpl(const EfficientNetConfig& config, ModelInfo info, const ModelOptions& options)
      : ModelImpl(std::move(info), options),
        dropout_(options.dropout() >= 0 ? options.dropout() : config.dropout) {
    VTL_CHECK(dropout_ <= 1.0, "{}: dropout must be in [0, 1] (got {})", name(), dropout_);
    VTL_CHECK(!options.include_top() || options.pooling() != Pooling::none,
              "{}: pooling 'none' needs include_top=false (the classifier takes a vector)", name());
    const double eps = config.bn_eps, momentum = config.bn_momentum;
    const int64_t stem_channels = scale_channels(kBaseline[0].in_channels, config.width_mult);
    auto stem = conv_norm_act(3, stem_channels, 3, 2, 1, Activation::silu, eps, momentum);
    features->push_back(stem);
    stages_.push_back({"stem", [stem](torch::Tensor x) mutable { return stem->forward(x); }});

    int64_t total_blocks = 0;
    for (const auto& stage : kBaseline)
      total_blocks += scale_depth(stage.num_layers, config.depth_mult);
    int64_t block_id = 0;
    int64_t in_channels = stem_channels;
    for (size_t s = 0; s < std::size(kBaseline); ++s) {
      const StageConfig& stage_config = kBaseline[s];
      StageConfig scaled = stage_config;
      scaled.out_channels = scale_channels(stage_config.out_channels, config.width_mult);
      SequentialBlock stage;
      const int64_t layers = scale_depth(stage_config.num_layers, config.depth_mult);
      for (int64_t layer = 0; layer < layers; ++layer) {
        const double sd_prob = kStochasticDepthProb * static_cast<double>(block_id) /
                               static_cast<double>(total_blocks);
        stage->push_back(
            MBConv(scaled, in_channels, layer == 0 ? stage_config.stride : 1, sd_prob, config));
        in_channels = scaled.out_channels;
        ++block_id;
      }
      features->push_back(stage);
      stages_.push_back({"stage" + std::to_string(s + 1),
                         [stage](torch::Tensor x) mutable { return stage->forward(x); }});
    }
    auto head =
        conv_norm_act(in_channels, num_features(), 1, 1, 1, Activation::silu, eps, momentum);
    features->push_back(head);
    stages_.push_back({"head", [head](torch::Tensor x) mutable { return head->forward(x); }});
    register_module("features", features);

    init_conv_bn(*this);
    reset_classifier(options_.include_top() ? options_.num_classes() : 0);
  }

  torch::Tensor forward_head(torch::Tensor features_map, bool pre_logits) override {
    auto pooled = pool(features_map);
    if (!classifier || pre_logits) return pooled;
    return classifier->forward(pooled);
  }

  void reset_classifier(int64_t num_classes) override {
    if (classifier) unregister_module("classifier");
    classifier = nullptr;
    options_.include_top(num_classes > 0);
    if (num_classes <= 0) return;
    options_.num_classes(num_classes);
    auto fc = linear(num_features(), num_classes);
    init_linear(fc);
    classifier = register_module(
        "classifier",
        torch::nn::Sequential(torch::nn::Dropout(torch::nn::DropoutOptions(dropout_)), fc));
  }

  std::string classifier_prefix() const override { return "classifier.1"; }

  SequentialBlock features;
  torch::nn::Sequential classifier{nullptr};

 private:
  /// torchvision: Linear weight uniform(-1/sqrt(out), 1/sqrt(out)), bias 0.
  static void init_linear(torch::nn::Linear& fc) {
    torch::NoGradGuard no_grad;
    const double range = 1.0 / std::sqrt(static_cast<double>(fc->options.out_features()));
    torch::nn::init::uniform_(fc->weight, -range, range);
    torch::nn::init::zeros_(fc->bias);
  }

  double dropout_;
};

}  // namespace

void register_efficientnet() {
  for (const auto& config : kEfficientNets) {
    ModelInfo info{config.name, "efficientnet", config.input_size, head_channels(config),
                   config.recommended_use};
    register_model(info, [config, info](const ModelOptions& options) {
      return make_model<EfficientNetImpl>(config, info, options);
    });
  }
}

}  // namespace vtl::models

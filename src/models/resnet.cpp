// ResNet (He et al., "Deep Residual Learning for Image Recognition", 2015, Table 1),
// torchvision's layout and names: conv1, bn1, layer1..layer4 (blocks "layerS.B" with
// conv1/bn1.., downsample.0/.1), fc.

#include <torch/torch.h>

#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// One row of the paper's Table 1.
struct ResNetConfig {
  const char* name;
  bool bottleneck;  ///< 3-layer bottleneck blocks (expansion 4) vs 2-layer basic
  std::array<int64_t, 4> blocks_per_stage;
  const char* recommended_use;
};

constexpr ResNetConfig kResNets[] = {
    {"resnet18", false, {2, 2, 2, 2}, "small, fast baseline; quick experiments"},
    {"resnet34", false, {3, 4, 6, 3}, "basic-block ResNet; between resnet18 and resnet50"},
    {"resnet50", true, {3, 4, 6, 3}, "general-purpose fine-tuning; 2048-d features"},
    {"resnet101", true, {3, 4, 23, 3}, "more accuracy than resnet50 at ~2x the cost"},
    {"resnet152", true, {3, 8, 36, 3}, "deepest ResNet; accuracy over speed"},
};

/// Basic (two 3x3 convs) or bottleneck (1x1, 3x3, 1x1) residual block; the stride sits on
/// the 3x3 conv (torchvision's "ResNet v1.5").
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(bool bottleneck, int64_t in_channels, int64_t width, int64_t stride)
      : bottleneck_(bottleneck) {
    const int64_t expansion = bottleneck ? 4 : 1;
    const int64_t out_channels = width * expansion;
    if (bottleneck) {
      conv1 = register_module("conv1", conv2d(in_channels, width, 1));
      bn1 = register_module("bn1", batch_norm(width));
      conv2 = register_module("conv2", conv2d(width, width, 3, stride));
      bn2 = register_module("bn2", batch_norm(width));
      conv3 = register_module("conv3", conv2d(width, out_channels, 1));
      bn3 = register_module("bn3", batch_norm(out_channels));
    } else {
      conv1 = register_module("conv1", conv2d(in_channels, width, 3, stride));
      bn1 = register_module("bn1", batch_norm(width));
      conv2 = register_module("conv2", conv2d(width, width, 3));
      bn2 = register_module("bn2", batch_norm(width));
    }
    if (stride != 1 || in_channels != out_channels) {
      downsample = register_module(
          "downsample", torch::nn::Sequential(conv2d(in_channels, out_channels, 1, stride),
                                              batch_norm(out_channels)));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    auto identity = downsample ? downsample->forward(x) : x;
    // In-place activations and residual add, as torchvision: fewer allocations.
    auto out = bn1(conv1(x)).relu_();
    out = bn2(conv2(out));
    if (bottleneck_) out = bn3(conv3(out.relu_()));
    return out.add_(identity).relu_();
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};

 private:
  bool bottleneck_;
};
TORCH_MODULE(ResidualBlock);

class ResNetImpl : public ModelImpl {
 public:
  ResNetImpl(const ResNetConfig& config, ModelInfo info, const ModelOptions& options)
      : ModelImpl(std::move(info), options) {
    conv1 = register_module("conv1", conv2d(3, 64, 7, 2, 3));
    bn1 = register_module("bn1", batch_norm(64));
    stages_.push_back({"stem", [this](torch::Tensor x) {
                         return torch::max_pool2d(bn1(conv1(x)).relu_(), 3, 2, 1);
                       }});
    int64_t in_channels = 64;
    for (int stage = 0; stage < 4; ++stage) {
      const int64_t width = 64 << stage;
      torch::nn::Sequential layer;
      for (int64_t block = 0; block < config.blocks_per_stage[stage]; ++block) {
        const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
        layer->push_back(ResidualBlock(config.bottleneck, in_channels, width, stride));
        in_channels = width * (config.bottleneck ? 4 : 1);
      }
      const std::string name = "layer" + std::to_string(stage + 1);
      register_module(name, layer);
      stages_.push_back({name, [layer](torch::Tensor x) mutable { return layer->forward(x); }});
    }
    init_conv_bn(*this);
    reset_classifier(options_.include_top() ? options_.num_classes() : 0);
  }

  torch::Tensor forward_head(torch::Tensor features, bool pre_logits) override {
    auto pooled = pool(features);
    if (!fc || pre_logits) return pooled;
    return fc(pooled);
  }

  void reset_classifier(int64_t num_classes) override {
    if (fc) unregister_module("fc");
    fc = nullptr;
    options_.include_top(num_classes > 0);
    if (num_classes > 0) {
      options_.num_classes(num_classes);
      fc = register_module("fc", linear(num_features(), num_classes));
    }
  }

  std::string classifier_prefix() const override { return "fc"; }

  torch::nn::Conv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr};
  torch::nn::Linear fc{nullptr};
};

}  // namespace

void register_resnet() {
  for (const auto& config : kResNets) {
    ModelInfo info{config.name, "resnet", 224, config.bottleneck ? 2048 : 512,
                   config.recommended_use};
    register_model(info, [config, info](const ModelOptions& options) {
      return make_model<ResNetImpl>(config, info, options);
    });
  }
}

}  // namespace vtl::models

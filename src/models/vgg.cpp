// VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
// Recognition", 2014, Table 1 columns D = VGG16 and E = VGG19), torchvision's layout and
// names: `features.N` (conv 3x3 pad 1 with bias, [BatchNorm], ReLU, MaxPool 2x2 after each
// block; parameterless layers still take an index), `avgpool` (adaptive average to 7x7),
// `classifier.0/3/6` (Linear 25088->4096, ReLU, Dropout, Linear 4096->4096, ReLU, Dropout,
// Linear 4096->num_classes).

#include <torch/torch.h>

#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// One column of the paper's Table 1: convolutions per block (widths 64, 128, 256, 512,
/// 512), each block ending in a 2x2 max-pool.
struct VggConfig {
  const char* name;
  std::array<int64_t, 5> convs_per_block;
  bool batch_norm;  ///< BatchNorm after every conv (torchvision's "_bn" variants)
  const char* recommended_use;
};

constexpr VggConfig kVggs[] = {
    {"vgg16", {2, 2, 3, 3, 3}, false, "baseline; large and slow"},
    {"vgg19", {2, 2, 4, 4, 4}, false, "baseline; largest and slowest here"},
    {"vgg16_bn", {2, 2, 3, 3, 3}, true, "baseline with BatchNorm; easier to fine-tune than vgg16"},
    {"vgg19_bn", {2, 2, 4, 4, 4}, true, "baseline with BatchNorm; easier to fine-tune than vgg19"},
};

constexpr int64_t kBlockWidths[5] = {64, 128, 256, 512, 512};
constexpr int64_t kHiddenWidth = 4096;  ///< classifier.0 / classifier.3 width
constexpr int64_t kHeadGrid = 7;        ///< avgpool output side
constexpr double kDefaultDropout = 0.5;

/// The i-th layer of a Sequential, callable whatever its type.
torch::nn::AnyModule& layer(torch::nn::Sequential& sequential, size_t i) {
  return *(sequential->begin() + static_cast<std::ptrdiff_t>(i));
}

class VggImpl : public ModelImpl {
 public:
  VggImpl(const VggConfig& config, ModelInfo info, const ModelOptions& options)
      : ModelImpl(std::move(info), options),
        dropout_(options.dropout() >= 0 ? options.dropout() : kDefaultDropout) {
    features = register_module("features", torch::nn::Sequential());
    int64_t in_channels = 3;
    for (int block = 0; block < 5; ++block) {
      const size_t first = features->size();
      for (int64_t i = 0; i < config.convs_per_block[block]; ++i) {
        const int64_t width = kBlockWidths[block];
        features->push_back(conv2d(in_channels, width, 3, 1, 1, 1, /*bias=*/true));
        if (config.batch_norm) features->push_back(batch_norm(width));
        features->push_back(torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)));
        in_channels = width;
      }
      features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      const size_t last = features->size();
      // Stage "blockK": [N,C,H,W] -> [N,width_K,H/2,W/2] (ends with the block's max-pool).
      stages_.push_back({"block" + std::to_string(block + 1), [this, first, last](torch::Tensor x) {
                           for (size_t i = first; i < last; ++i) x = layer(features, i).forward(x);
                           return x;
                         }});
    }
    init_conv_bn(*features);
    if (options_.include_top()) build_classifier(options_.num_classes());
  }

  /// With a top: adaptive average pool to 7x7 (whatever the input size), flatten to
  /// [N, 25088], the MLP; pre_logits is the output of classifier.5 ([N, 4096]). The
  /// `pooling` option applies only without a top (as in Keras), returning pool(features).
  torch::Tensor forward_head(torch::Tensor features_map, bool pre_logits) override {
    if (!classifier) return pool(features_map);
    auto x = torch::adaptive_avg_pool2d(features_map, {kHeadGrid, kHeadGrid}).flatten(1);
    for (size_t i = 0; i < 6; ++i) x = layer(classifier, i).forward(x);
    if (pre_logits) return x;
    return layer(classifier, 6).forward(x);
  }

  /// num_classes > 0: replaces classifier.6 only (the 4096-wide MLP keeps its weights; it is
  /// built fresh when the model had no top). 0: removes the whole classifier, so the
  /// state_dict equals that of a model built with include_top false.
  void reset_classifier(int64_t num_classes) override {
    options_.include_top(num_classes > 0);
    if (num_classes <= 0) {
      if (classifier) unregister_module("classifier");
      classifier = nullptr;
      return;
    }
    options_.num_classes(num_classes);
    if (!classifier) {
      build_classifier(num_classes);
      return;
    }
    auto fc = linear(kHiddenWidth, num_classes);
    init_linear(*fc);
    // Sequential has no replace(): rebuild it around the kept layers.
    torch::nn::Sequential rebuilt;
    for (size_t i = 0; i < 6; ++i) rebuilt->push_back(layer(classifier, i));
    rebuilt->push_back(fc);
    replace_module("classifier", rebuilt);
    classifier = rebuilt;
  }

  std::string classifier_prefix() const override { return "classifier.6"; }
  int64_t pre_logits_width() const override { return classifier ? kHiddenWidth : num_features(); }

  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};

 private:
  void build_classifier(int64_t num_classes) {
    const int64_t flat = num_features() * kHeadGrid * kHeadGrid;
    torch::nn::Sequential head(linear(flat, kHiddenWidth),
                               torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)),
                               torch::nn::Dropout(dropout_), linear(kHiddenWidth, kHiddenWidth),
                               torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)),
                               torch::nn::Dropout(dropout_), linear(kHiddenWidth, num_classes));
    for (auto& module : head->modules(/*include_self=*/false)) {
      if (auto* fc = module->as<torch::nn::Linear>()) init_linear(*fc);
    }
    classifier = register_module("classifier", head);
  }

  /// torchvision: Linear weight ~ N(0, 0.01), bias 0.
  static void init_linear(torch::nn::LinearImpl& fc) {
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(fc.weight, 0.0, 0.01);
    fc.bias.zero_();
  }

  double dropout_;
};

}  // namespace

void register_vgg() {
  for (const auto& config : kVggs) {
    ModelInfo info{config.name, "vgg", 224, 512, config.recommended_use};
    register_model(info, [config, info](const ModelOptions& options) {
      return make_model<VggImpl>(config, info, options);
    });
  }
}

}  // namespace vtl::models

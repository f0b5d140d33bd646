#pragma once
// The one interface every architecture implements (timm's, the one transfer learning
// needs). Parameter and buffer names equal torchvision's state_dict keys (timm's for
// MobileNetV1), so published weight files load without a name map.
//
// Shapes: images are float32 [N, 3, H, W], normalized with the weights' preset.
// forward_features -> [N, num_features(), h, w] (h = H/32 for every family here).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace vtl::models {

/// How the feature map is reduced to a vector before the classifier.
enum class Pooling { avg, max, none };

std::string to_string(Pooling pooling);
/// Parses "avg", "max" or "none"; throws vtl::Error otherwise.
Pooling parse_pooling(const std::string& text);

/// Options shared by every architecture.
struct ModelOptions {
  /// Number of outputs of the classifier (ImageNet: 1000).
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// false: no classifier; forward() returns the pooled features (or the map with
  /// pooling none), like Keras' `include_top=False`.
  TORCH_ARG(bool, include_top) = true;
  /// Global pooling applied by forward_head.
  TORCH_ARG(Pooling, pooling) = Pooling::avg;
  /// Dropout before the final linear layer; negative means the family's default.
  TORCH_ARG(double, dropout) = -1.0;
};

/// Static facts of one registered architecture (data from the family's config table).
struct ModelInfo {
  std::string name;             ///< registry name, e.g. "resnet50"
  std::string family;           ///< "resnet", "vgg", "mobilenet_v1", ...
  int64_t default_input_size;   ///< square input side in pixels, e.g. 224 (b7: 600)
  int64_t num_features;         ///< channels of forward_features' output
  std::string recommended_use;  ///< one line for the comparison table
};

/// Base class of every architecture. Subclasses register their submodules under
/// torchvision's names and implement forward_features and the head.
class ModelImpl : public torch::nn::Module {
 public:
  ModelImpl(ModelInfo info, ModelOptions options);

  /// [N,3,H,W] -> unpooled feature map [N, num_features(), h, w].
  virtual torch::Tensor forward_features(torch::Tensor x);

  /// Pools `features` ([N,C,h,w]) and applies the classifier.
  /// pre_logits: return the input of the final linear layer instead of the logits
  /// ([N, pre_logits_width()]). Without a top, returns the pooled features.
  virtual torch::Tensor forward_head(torch::Tensor features, bool pre_logits = false) = 0;

  /// forward_head(forward_features(x)).
  torch::Tensor forward(torch::Tensor x);

  /// Runs the network up to the last requested tap and returns each requested tap.
  /// Taps: the names of stages(), "features" (= forward_features), "avg_pool" (global
  /// average of the feature map, [N, num_features()]), "pre_logits" and "logits" (the
  /// last two only with a top). Unknown names throw vtl::Error listing the valid ones.
  std::map<std::string, torch::Tensor> forward_taps(torch::Tensor x,
                                                    const std::vector<std::string>& taps);
  /// Every tap name forward_taps accepts, in network order.
  std::vector<std::string> tap_names() const;

  /// Replaces the final linear layer by a freshly initialised one with `num_classes`
  /// outputs (0 removes the top). Earlier head layers (VGG's 4096-wide MLP) are kept.
  virtual void reset_classifier(int64_t num_classes) = 0;

  /// Prefix of the state_dict keys of the final linear layer (e.g. "fc", "classifier.6");
  /// used to leave it out when loading weights for another number of classes.
  virtual std::string classifier_prefix() const = 0;

  int64_t num_features() const { return info_.num_features; }
  /// Width of forward_head(..., pre_logits=true) (VGG 4096, MobileNetV3-Large 1280).
  virtual int64_t pre_logits_width() const { return info_.num_features; }
  int64_t num_classes() const { return options_.include_top() ? options_.num_classes() : 0; }
  const ModelInfo& info() const { return info_; }
  const ModelOptions& options() const { return options_; }
  const std::string& name() const { return info_.name; }

 protected:
  /// One named stage of the backbone, run in order by forward_features; the stage names
  /// are the backbone's taps (e.g. resnet: "stem", "layer1".."layer4").
  struct Stage {
    std::string name;
    std::function<torch::Tensor(torch::Tensor)> run;
  };
  /// The backbone's stages in order; set by the subclass constructor.
  std::vector<Stage> stages_;

  /// Appends a stage that runs modules [first, last) of `sequence`, a registered submodule
  /// that may still grow (the stage keeps a reference, not a copy).
  void add_stage(std::string name, torch::nn::Sequential sequence, size_t first, size_t last);

  /// Global pooling per options().pooling() and flatten: [N,C,h,w] -> [N,C]
  /// (pooling none: returned unchanged).
  torch::Tensor pool(const torch::Tensor& features) const;

  ModelInfo info_;
  ModelOptions options_;
};
TORCH_MODULE(Model);

/// Wraps a concrete architecture in the Model holder (the holder's own forwarding
/// constructor would otherwise try to build the abstract ModelImpl).
template <typename Impl, typename... Args>
Model make_model(Args&&... args) {
  return Model(std::shared_ptr<ModelImpl>(std::make_shared<Impl>(std::forward<Args>(args)...)));
}

}  // namespace vtl::models

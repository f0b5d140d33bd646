#pragma once
// The transfer-learning network: a pretrained base without its top (Keras'
// `include_top=False`), global average pooling, dropout and a new dense head.
//
//   images [N,3,H,W] -> base.forward_features -> [N,C,h,w] -> mean over h,w -> [N,C]
//                    -> dropout(p) -> head (Linear C -> num_classes) -> logits [N,K]
//
// Parameter names: the base keeps torchvision's names ("conv1.weight",
// "layer4.1.bn2.running_var"); the head is named after the family's own final linear layer
// when torchvision's classifier is a single linear on the pooled features (resnet: "fc",
// efficientnet / mobilenet_v2: "classifier.1"), so a saved state dict loads strictly into
// torchvision's model built with `num_classes=K`; other families (vgg, mobilenet_v3,
// mobilenet_v1, whose torchvision classifier is an MLP) call it "head".

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vtl/models/model.h"
#include "vtl/weights/state_dict.h"

namespace vtl::models {

/// The state-dict prefix of the new head for an architecture (see the file comment).
std::string transfer_head_prefix(const Model& base);

/// Float32 parameters; lives on one device (module->to(device) moves it). The
/// TransferModel holder is a shared handle, and `base` is shared with the Model passed in
/// (no copy): freezing or training one changes the other. Not thread-safe: serialize
/// calls on one model.
class TransferModelImpl : public torch::nn::Module {
 public:
  /// `base` must have been built with include_top=false; `dropout` in [0, 1). The head
  /// is a freshly initialised Linear(base->num_features(), num_classes).
  TransferModelImpl(Model base, int64_t num_classes, double dropout = 0.2);

  /// images -> logits [N, num_classes].
  torch::Tensor forward(torch::Tensor images);
  /// images -> pooled base features [N, num_features()] (what the head consumes).
  torch::Tensor features(torch::Tensor images);
  /// pooled features [N, num_features()] -> logits [N, num_classes] (dropout + linear).
  torch::Tensor forward_head(torch::Tensor pooled);

  /// Replaces the head by a freshly initialised one with `num_classes` outputs.
  void reset_head(int64_t num_classes);

  /// Parameters and buffers under their published names (see the file comment); CPU,
  /// contiguous copies.
  weights::StateDict export_state_dict() const;
  /// Loads a state dict in export_state_dict()'s naming. Missing or unexpected keys and
  /// shape mismatches throw vtl::Error naming them (`source` names the file).
  void import_state_dict(const weights::StateDict& state, const std::string& source);

  int64_t num_classes() const { return num_classes_; }
  int64_t num_features() const { return base->num_features(); }
  double dropout_rate() const { return dropout_rate_; }
  const std::string& head_prefix() const { return head_prefix_; }
  const std::string& architecture() const { return base->name(); }

  Model base{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  int64_t num_classes_;
  double dropout_rate_;
  std::string head_prefix_;
};
TORCH_MODULE(TransferModel);

}  // namespace vtl::models

#pragma once
// The network behind `vtl predict`, `vtl explain` and `vtl export`: a trained model folder,
// or a registered network with pretrained weights.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vtl/core/preprocessing.h"

namespace vtl::cli {

/// Float32 on the CPU, in training mode as loaded (callers put it in eval mode and move it).
struct Classifier {
  std::shared_ptr<torch::nn::Module> module;  ///< the network behind the functions below
  /// images [N,3,H,W] -> logits [N,K]; without a classifier (include_top false): the pooled
  /// features [N,C].
  std::function<torch::Tensor(const torch::Tensor&)> logits;
  /// images -> last feature map [N,C,h,w]; `head` maps it to the logits.
  std::function<torch::Tensor(const torch::Tensor&)> feature_map;
  std::function<torch::Tensor(const torch::Tensor&)> head;
  /// images -> globally average-pooled features [N,C] (what `vtl extract` writes).
  std::function<torch::Tensor(const torch::Tensor&)> pooled_features;
  Preprocessing preprocessing;
  std::vector<std::string> class_names;  ///< empty when the weights name no classes
  std::string architecture;              ///< registry name, e.g. "resnet50"
  std::string source;                    ///< "trained model folder DIR" or "weights NAME"
  std::string description;               ///< one line for the user
};

/// `model`: a trained model folder (then `weights` must be empty) or a registry name with
/// `weights` (catalogue name or file; empty: the default catalogue weights). A registry
/// network is built without its classifier when `include_top` is false. Throws vtl::Error
/// saying what is wrong.
Classifier open_network(const std::string& model, const std::string& weights,
                        bool include_top = true);

/// open_network, for naming predictions: the weights must name their classes.
Classifier open_classifier(const std::string& model, const std::string& weights);

}  // namespace vtl::cli

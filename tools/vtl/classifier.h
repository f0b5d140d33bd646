#pragma once
// The image classifier behind `vtl predict` and `vtl explain`: a trained model folder, or a
// registered network with pretrained weights that name their classes.

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
  /// images [N,3,H,W] -> logits [N,K]
  std::function<torch::Tensor(const torch::Tensor&)> logits;
  /// images -> last feature map [N,C,h,w]; `head` maps it to the logits.
  std::function<torch::Tensor(const torch::Tensor&)> feature_map;
  std::function<torch::Tensor(const torch::Tensor&)> head;
  Preprocessing preprocessing;
  std::vector<std::string> class_names;
  std::string description;
};

/// `model`: a trained model folder (then `weights` must be empty) or a registry name with
/// `weights` (catalogue name or file; empty: the default catalogue weights), whose classes
/// must be named. Throws vtl::Error saying what is wrong.
Classifier open_classifier(const std::string& model, const std::string& weights);

}  // namespace vtl::cli

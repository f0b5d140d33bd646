#pragma once
// The network behind `vtl predict`, `vtl explain` and `vtl export`: a trained model folder,
// or a registered network with pretrained weights.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

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
  int64_t num_classes = 0;               ///< the classifier's outputs; 0 without one
  std::string architecture;              ///< registry name, e.g. "resnet50"
  std::string source;                    ///< "trained model folder DIR" or "weights NAME"
  std::string description;               ///< one line for the user
};

/// `model`: a trained model folder (then `weights` must be empty) or a registry name with
/// `weights` (catalogue name or file; empty: the default catalogue weights). A registry
/// network takes the classifier of its weights file, whatever its size (a network
/// fine-tuned elsewhere), and is built without one when `include_top` is false. Throws
/// vtl::Error saying what is wrong.
Classifier open_network(const std::string& model, const std::string& weights,
                        bool include_top = true);

/// open_network, for naming predictions: the classes are named by the model folder, by the
/// catalogue weights (ImageNet), or by `class_names_file` (one name per line, in output
/// order; for weights files only). Throws vtl::Error when they cannot be named.
Classifier open_classifier(const std::string& model, const std::string& weights,
                           const std::string& class_names_file = {});

/// Adds `--class-names FILE` (for open_classifier) to a command.
void add_class_names_option(CLI::App* command, std::string& file);

}  // namespace vtl::cli

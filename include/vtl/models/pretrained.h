#pragma once
// Pretrained models: an architecture from the registry + a weights file from the store
// (a catalogue name such as "resnet50.tv2_in1k") or any .pth/.safetensors path, with the
// preprocessing and class names that go with the weights (timm's pretrained_cfg).

#include <filesystem>
#include <string>
#include <vector>

#include "vtl/core/preprocessing.h"
#include "vtl/models/model.h"
#include "vtl/weights/load.h"
#include "vtl/weights/state_dict.h"

namespace vtl::models {

/// A model and what came with its weights. `model` is a shared handle (LibTorch module
/// holder): copies of the struct share one network, which is not thread-safe: serialize
/// calls on it.
struct PretrainedModel {
  /// Float32 on the CPU, in training mode (call ->eval() for inference).
  Model model{nullptr};
  /// Eval transform of the weights (catalogue entry; files: ImageNet statistics at the
  /// architecture's default input size).
  Preprocessing preprocessing;
  /// Class names of the classifier's outputs (ImageNet-1k for catalogue weights with the
  /// published classifier; empty when the classifier was left out or replaced).
  std::vector<std::string> class_names;
  /// What was loaded and what was left out (e.g. a fresh classifier).
  weights::LoadReport report;
  /// Catalogue name, or the file's path.
  std::string weights;
  std::filesystem::path file;
};

/// Builds `arch` with `options` and loads `weights` into it: a catalogue name (or "",
/// "imagenet" or the architecture name for its default entry) that must already be in the store, a
/// path to a weights file, or "random" for torchvision's random initialisation (seeded by
/// torch::manual_seed; preprocessing: ImageNet statistics at the default input size;
/// empty report). A missing store file throws vtl::Error telling exactly how to
/// get it (`vtl weights fetch NAME`, or the URL and `vtl weights import FILE`). Weights of
/// another architecture throw vtl::Error naming the file and the mismatched keys/shapes.
/// With num_classes different from the file's classifier, the classifier is left out and
/// freshly initialised (said in report.summary()); with include_top=false the file's
/// classifier is ignored. class_names: ImageNet's for a 1000-way published classifier,
/// else empty.
PretrainedModel load_pretrained(const std::string& arch, const std::string& weights,
                                const ModelOptions& options = {});

/// load_pretrained with the classifier the weights file holds, whatever its number of
/// outputs: a network fine-tuned elsewhere on 10 classes loads with its 10-way head
/// (torchvision: `resnet18(num_classes=10)` + `load_state_dict`). class_names is empty
/// unless the file's classifier is a published 1000-way ImageNet one.
PretrainedModel load_pretrained_as_saved(const std::string& arch, const std::string& weights,
                                         bool include_top = true);

/// load_pretrained(...).model.
Model create_pretrained(const std::string& arch, const std::string& weights,
                        const ModelOptions& options = {});

/// Throws vtl::Error naming `file` unless `state_dict` loads strictly into `arch` with
/// the classifier size found in the file. Used to check files without a published hash.
void check_weights_for_architecture(const std::string& arch, const weights::StateDict& state_dict,
                                    const std::string& file);

}  // namespace vtl::models

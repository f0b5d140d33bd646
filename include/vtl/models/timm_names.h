#pragma once
// Weights files of timm (huggingface/pytorch-image-models) whose modules are the
// torchvision architecture vtl builds under other names: their keys are renamed to
// torchvision's before loading. (ResNets share torchvision's names; MobileNetV1 is
// built with timm's own.)

#include <string>

#include "vtl/weights/state_dict.h"

namespace vtl::models {

/// For `architecture` efficientnet_b0..b7, a state dict with timm's EfficientNet names
/// (conv_stem, bn1, blocks.S.B.{conv_dw, conv_pw, conv_pwl, bn1..3, se.conv_reduce,
/// se.conv_expand}, conv_head, bn2, classifier) is renamed in place to torchvision's
/// (features.0, features.S+1.B.block.I, features.8, classifier.1); the tensors are the
/// same. Returns what was done, for the load report ("" when nothing was renamed: another
/// architecture, or torchvision's names already). Keys it does not know are kept, so the
/// strict load names them.
///
/// timm's efficientnet_bN weights are torchvision's architecture; its tf_efficientnet_bN
/// weights are not (TensorFlow's asymmetric padding, BatchNorm eps 1e-3) and would load
/// without error but compute other features: use the efficientnet_bN ones.
std::string rename_timm_keys(const std::string& architecture, weights::StateDict& state_dict);

}  // namespace vtl::models

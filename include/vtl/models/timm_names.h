#pragma once
// Weights files of timm (huggingface/pytorch-image-models) whose modules are the
// torchvision architecture vtl builds under other names: their keys are renamed to
// torchvision's before loading. (ResNets share torchvision's names; MobileNetV1 is
// built with timm's own.)

#include <string>

#include "vtl/weights/state_dict.h"

namespace vtl::models {

/// For `architecture` efficientnet_b0..b7 and mobilenet_v3_small/large, a state dict with
/// timm's names (conv_stem, bn1, blocks.S.B.{conv_pw, conv_dw, conv_pwl, conv, bn1..3,
/// se.conv_reduce, se.conv_expand}, conv_head, bn2, classifier) is renamed in place to
/// torchvision's (features.*, classifier.*); the tensors are the same, but MobileNetV3's
/// conv_head (a 1x1 convolution after pooling) becomes torchvision's first Linear, [O, I].
/// Returns what was done, for the load report ("" when nothing was renamed: another
/// architecture, or torchvision's names already). Keys it does not know are kept, so the
/// strict load names them.
///
/// For vgg16/19(_bn), timm's pre_logits.fc1 (7x7 convolution), pre_logits.fc2 (1x1) and
/// head.fc become torchvision's classifier.0, .3 and .6 (the convolutions flattened to
/// Linear weights); `features` has the same names in both.
///
/// These are timm's efficientnet_bN and mobilenetv3_{large,small}_100 models, built as
/// torchvision builds them. timm's tf_efficientnet_bN and tf_mobilenetv3_* weights are
/// not (TensorFlow's asymmetric padding, BatchNorm eps 1e-3): they would load without an
/// error but compute other features.
std::string rename_timm_keys(const std::string& architecture, weights::StateDict& state_dict);

}  // namespace vtl::models

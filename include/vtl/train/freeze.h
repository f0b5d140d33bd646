#pragma once
// Freezing and unfreezing the base of a TransferModel.
//
// A "layer" (what `--unfreeze N` counts) is one module that owns parameters — a
// convolution, a batch norm, a linear layer — in the order of torchvision's
// `named_modules()` (the order the modules are declared, which is execution order except
// that a ResNet block's `downsample` shortcut is listed after the block's convs). This is
// what Keras' `base_model.layers[-N:]` counts minus the layers without weights
// (Activation, Add, ZeroPadding, pooling), whose number differs between the Keras and
// torchvision implementations; docs/training.md has the per-family table.
//
// Freezing sets requires_grad=false, so autograd records nothing for the frozen prefix
// and the optimizer never sees those parameters; the trainer also runs a fully frozen base
// under NoGradGuard and keeps the base's BatchNorm layers in inference mode.
//
// These functions change the model they are given (a shared handle: every copy of it
// sees the change) and are not thread-safe: call them between fit()s, not during one.
// An optimizer built before a change keeps its old parameter list; build a new one
// (train::fit does on every call).

#include <string>
#include <vector>

#include <torch/torch.h>

#include "vtl/models/transfer_model.h"

namespace vtl::train {

struct Layer {
  std::string name;  ///< torchvision name, e.g. "layer4.1.conv2"
  std::shared_ptr<torch::nn::Module> module;
};

/// The base's weighted layers in order (see the file comment).
std::vector<Layer> weighted_layers(models::Model& base);

/// Freezes every parameter of the base; the head stays trainable.
void freeze_base(models::TransferModel& model);

/// Unfreezes the last `count` weighted layers of the base (all of them when count exceeds
/// the total) and returns their names, first to last. The rest stays as it was.
std::vector<std::string> unfreeze_last(models::TransferModel& model, int64_t count);

/// Unfreezes the layers from `block` on: the first weighted layer named `block` or inside
/// it ("layer4", "features.6", "layer4.1.conv2") and every one after it. An unknown block
/// throws vtl::Error listing the top-level blocks. Returns the unfrozen layer names.
std::vector<std::string> unfreeze_from(models::TransferModel& model, const std::string& block);

/// Throws the vtl::Error unfreeze_from(model, block) would, without changing anything.
void check_unfreeze_block(models::TransferModel& model, const std::string& block);

/// Makes every parameter trainable.
void unfreeze_all(models::TransferModel& model);

/// The parameters with requires_grad, in registration order (what the optimizer gets).
std::vector<torch::Tensor> trainable_parameters(models::TransferModel& model);

/// Trainable parameters that share a learning rate (an optimizer parameter group).
struct ParameterGroup {
  std::string name;  ///< the base layer's name, or "head"
  std::vector<torch::Tensor> parameters;
  double lr_scale = 1;  ///< multiplies the phase's learning rate
};

/// The trainable parameters for discriminative learning rates (fastai's `slice(lr / ratio,
/// lr)`): one group per trainable weighted layer of the base, in order, then one for the
/// rest (the head). With n base groups, group g (0-based) learns at lr x ratio^-((n - g) / n):
/// the first trainable layer at lr / ratio, rising geometrically to lr for the head.
/// `ratio` 1 gives every group lr. Throws vtl::Error for a ratio below 1.
std::vector<ParameterGroup> layerwise_parameter_groups(models::TransferModel& model, double ratio);

/// True when no parameter of the base requires grad.
bool base_is_frozen(models::TransferModel& model);

/// Training mode for a step: the head trains; the base is in inference mode (BatchNorm
/// uses its running statistics, as Keras with training=False) unless `base_trains` (the
/// `full` strategy); with `train_bn`, the unfrozen layers' BatchNorm layers train too.
void set_training_mode(models::TransferModel& model, bool base_trains, bool train_bn);

}  // namespace vtl::train

#pragma once
// Keras-style training of a TransferModel from a program: the images of a class-folder
// tree split into training and validation data (Keras' `image_dataset_from_directory`
// with `validation_split`), and `fit`, which trains the parameters the caller left
// trainable (freeze.h) with a fresh optimizer on every call (`model.compile(optimizer=...)`
// followed by `model.fit(train, epochs=..., validation_data=val)`).
//
//   auto images = vtl::train::load_image_folder("photos/", pretrained.preprocessing);
//   vtl::models::TransferModel model(pretrained.model, images.num_classes());
//   vtl::train::freeze_base(model);                                   // base.trainable = False
//   vtl::train::fit(model, images, vtl::train::FitOptions().epochs(5));
//   vtl::train::unfreeze_last(model, 10);                             // fine-tune the top
//   vtl::train::fit(model, images, vtl::train::FitOptions().epochs(5).lr(1e-5));
//
// Loss: softmax cross-entropy on the head's logits (Keras' softmax Dense + categorical
// cross-entropy). Nothing is written to disk; vtl::train::run_training is the variant
// with a run folder, checkpoints and resume.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vtl/core/preprocessing.h"
#include "vtl/data/dataset.h"
#include "vtl/models/transfer_model.h"
#include "vtl/train/trainer.h"

namespace vtl::train {

/// Reads a class-folder tree `root/<class>/<image>` (or a `path,label` CSV; see
/// data/dataset.h), keeps `val_fraction` of each class for validation (a stratified
/// split seeded with `seed`; a root of split folders, `root/train/<class>/...` and
/// `root/val/<class>/...`, uses its val/ instead; data/split_folders.h), and decodes every image
/// once, with `workers` threads, into an in-memory store shrunk to what `preprocessing` needs.
/// Unreadable files are left out and listed in train.skipped / val.skipped. No augmentation (set
/// `augment` on the result to add it). Throws vtl::Error for a missing folder, fewer than 2
/// classes, or an empty validation split. `labels` says where the labels are when the layout
/// does not (a CSV's columns by name, or file names: fastai's `from_name_re`; see
/// data::LabelSource).
TrainData load_image_folder(const std::filesystem::path& root, const Preprocessing& preprocessing,
                            double val_fraction = 0.2, uint64_t seed = 0, int workers = 2,
                            const data::LabelSource& labels = {});

/// Options of one fit() call.
struct FitOptions {
  /// Passes over the training data.
  TORCH_ARG(int64_t, epochs) = 5;
  /// Learning rate, constant over the call.
  TORCH_ARG(double, lr) = 1e-3;
  /// Discriminative learning rates (fastai's `slice(lr / lr_ratio, lr)`): the first
  /// trainable layer of the base learns at lr / lr_ratio, rising geometrically layer by
  /// layer to lr for the head (layerwise_parameter_groups). 1: every parameter at lr.
  TORCH_ARG(double, lr_ratio) = 1;
  /// "adam", "adamw" or "sgd" (momentum 0.9).
  TORCH_ARG(std::string, optimizer) = "adam";
  /// Images per step.
  TORCH_ARG(int64_t, batch_size) = 32;
  /// Unfrozen BatchNorm layers of the base update their statistics; by default the
  /// whole base stays in inference mode (Keras' `base_model(x, training=False)`).
  TORCH_ARG(bool, train_bn) = false;
  /// Seeds the order of the training images in each epoch.
  TORCH_ARG(uint64_t, seed) = 0;
  /// "cpu", "cuda" or "cuda:N" (models::parse_device); the model is moved there and stays
  /// there. With a process group: "cpu" or "cuda" (the GPU of LOCAL_RANK).
  TORCH_ARG(std::string, device) = "cpu";
  /// Called after each epoch, on the calling thread, with that epoch's metrics.
  TORCH_ARG(std::function<void(const EpochMetrics&)>, on_epoch);
};

/// Trains the parameters of `model` that require grad now, with a new optimizer over
/// exactly those (so call it again after unfreeze_last to fine-tune), and returns one
/// row per epoch (epochs numbered from 1 in each call) with the training loss/accuracy
/// and the validation loss/accuracy measured after the epoch. A fully frozen base runs
/// under NoGradGuard, and without augmentation its pooled features are computed once
/// and the head trains from them. `model` is trained in place (shared handle) and left
/// in eval mode. Throws vtl::Error when nothing is trainable or an option is invalid.
/// Not thread-safe: one fit at a time per model.
std::vector<EpochMetrics> fit(models::TransferModel& model, const TrainData& data,
                              const FitOptions& options = {});

/// The learning-rate range test (lr_finder.h, fastai's `learn.lr_find()`) of what fit()
/// would train now with `options` (its lr and epochs are not used): the trainable
/// parameters take `range.steps` steps at geometrically growing learning rates; the model
/// gets its weights back. Call it again after unfreeze_last to choose the fine-tuning rate:
///
///   auto curve = vtl::train::find_lr(model, images);
///   vtl::train::fit(model, images, vtl::train::FitOptions().lr(curve.valley));
LrRangeResult find_lr(models::TransferModel& model, const TrainData& data,
                      const FitOptions& options = {}, const LrRangeOptions& range = {});

}  // namespace vtl::train

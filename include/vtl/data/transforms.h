#pragma once
// The training transform (torchvision's RandomResizedCrop + RandomHorizontalFlip +
// RandomAffine + ColorJitter, Keras' RandomRotation/RandomZoom/RandomTranslation), and
// batch-level mixup / cutmix. Each piece has its own switch; the eval transform is in
// preprocess.h.

#include <cstdint>
#include <random>

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include "vtl/core/preprocessing.h"

namespace vtl::data {

struct AugmentOptions {
  /// RandomResizedCrop: area fraction and aspect-ratio range of the crop (off: the eval
  /// transform's resize + center crop).
  bool random_resized_crop = true;
  double scale_min = 0.25, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  /// Horizontal flip with probability 0.5.
  bool horizontal_flip = true;
  /// Rotation by a uniform angle in [-rotation, rotation] degrees (0: off).
  double rotation = 10.0;
  /// Extra zoom by a uniform factor in [1 - zoom, 1 + zoom] (0: off).
  double zoom = 0.1;
  /// Shift by up to this fraction of the side, in x and y (0: off).
  double translate = 0.1;
  /// ColorJitter factors: brightness/contrast/saturation in [1 - f, 1 + f]; hue shift in
  /// [-hue, hue] of a full turn (torchvision's ranges; 0: off).
  double brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.02;
  /// Batch mixing (Zhang et al. 2018 mixup; Yun et al. 2019 cutmix): Beta(alpha, alpha)
  /// mixing weights, 0 = off. With both set, each batch uses one of them at random.
  double mixup_alpha = 0.0, cutmix_alpha = 0.0;

  /// All augmentation off (the train transform then equals the eval transform).
  static AugmentOptions none();
  bool any_per_image() const;
};

/// CV_8UC3 RGB image -> float32 [3, crop, crop] normalized tensor with random
/// augmentation drawn from `rng`. Same rng state, same output.
torch::Tensor train_transform(const cv::Mat& rgb, const Preprocessing& preprocessing,
                              const AugmentOptions& options, std::mt19937_64& rng);

/// Mixes a batch in place: images [N,3,H,W] and soft targets [N,K] (rows sum to 1) are
/// combined with a shuffled copy of the batch (mixup: convex blend; cutmix: a pasted
/// box, targets weighted by its area). No-op when both alphas are 0.
void mix_batch(torch::Tensor& images, torch::Tensor& targets, const AugmentOptions& options,
               std::mt19937_64& rng);

}  // namespace vtl::data

#pragma once
// The evaluation transform of a Preprocessing preset (torchvision's
// Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize), on OpenCV images.

#include <filesystem>
#include <vector>

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include "vtl/core/preprocessing.h"

namespace vtl::data {

/// The size torchvision's Resize(resize) gives an image of `size`: the shorter side
/// becomes `resize` and the longer one resize * long / short, rounded down.
cv::Size shorter_side_resized(cv::Size size, int resize);

/// CV_8UC3 RGB image -> CV_8UC3 RGB crop x crop: Resize(resize) to shorter_side_resized
/// (area averaging when shrinking, the preset's interpolation when enlarging), then
/// CenterCrop(crop) at torchvision's offsets (half the margin, ties to even as Python's
/// round). An image smaller than the crop is cropped to its shorter side and enlarged.
cv::Mat resize_center_crop(const cv::Mat& rgb, const Preprocessing& preprocessing);

/// CV_8UC3 RGB image -> float32 [3, crop, crop] normalized tensor (resize_center_crop,
/// to_tensor, normalize).
torch::Tensor eval_transform(const cv::Mat& rgb, const Preprocessing& preprocessing);

/// An image file -> the network's float32 [3, crop, crop] input: decoded as load_image_rgb
/// does (JPEGs at a reduced scale when the resize side allows it), then eval_transform.
/// Throws vtl::Error naming an unreadable file.
torch::Tensor load_eval_input(const std::filesystem::path& path,
                              const Preprocessing& preprocessing);

/// CV_8UC3 RGB (any size) -> float32 [3, H, W] in [0, 1] (no resizing, no normalization).
torch::Tensor to_tensor(const cv::Mat& rgb);

/// In place on [3,H,W] or [N,3,H,W]: (x - mean) / std per channel.
torch::Tensor normalize(torch::Tensor x, const Preprocessing& preprocessing);

/// Stacks [3,H,W] tensors into [N,3,H,W].
torch::Tensor stack_batch(const std::vector<torch::Tensor>& images);

}  // namespace vtl::data

#pragma once
// GIF decoding with giflib (OpenCV 4.6 has no GIF decoder). As Keras and torchvision's
// PIL read GIFs: the first frame of an animation; palette indices to RGB.

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

namespace vtl::data {

/// The first frame of `bytes` (a GIF87a/GIF89a file) as CV_8UC3 RGB of the logical
/// screen's size, the frame drawn at its offset. Pixels of the frame's transparent index,
/// and any part of the screen the frame does not cover, are white (vtl composites every
/// transparent image onto white). Throws vtl::Error naming `label` when the file has no
/// frame, no colour table, a frame or screen of more than `max_pixels` pixels, or data
/// giflib cannot read (cut short, bad LZW codes).
cv::Mat decode_gif_rgb(const std::string& bytes, const std::string& label, int64_t max_pixels);

}  // namespace vtl::data

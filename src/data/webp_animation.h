#pragma once
// Animated WebP with libwebp's animation decoder (OpenCV 4.6 reads still WebPs only). As
// Keras and torchvision's PIL read them: the first frame.

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

namespace vtl::data {

/// The first frame of `bytes` (an animated WebP: VP8X with the animation flag) as CV_8UC4
/// BGRA of the canvas size, as the animation shows it (drawn over a transparent canvas):
/// what cv::imdecode gives for a still WebP with transparency. Throws vtl::Error naming
/// `label` when libwebp cannot read it, or the canvas has more than `max_pixels` pixels.
cv::Mat decode_animated_webp_bgra(const std::string& bytes, const std::string& label,
                                  int64_t max_pixels);

}  // namespace vtl::data

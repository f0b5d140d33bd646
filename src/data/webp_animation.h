#pragma once
// Animated WebP with libwebp's animation decoder (OpenCV 4.6 reads still WebPs only). As
// Keras and torchvision's PIL read them: the first frame.

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

namespace vtl::data {

/// The first frame of `bytes` (an animated WebP: VP8X with the animation flag) as CV_8UC3
/// RGB of the canvas size, drawn as the animation shows it (over a transparent canvas)
/// and composited onto white as vtl composites every transparent image. Throws
/// vtl::Error naming `label` when libwebp cannot read it, or the canvas has more than
/// `max_pixels` pixels.
cv::Mat decode_animated_webp_rgb(const std::string& bytes, const std::string& label,
                                 int64_t max_pixels);

}  // namespace vtl::data

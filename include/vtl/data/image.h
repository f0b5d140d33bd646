#pragma once
// Image decoding with OpenCV into 8-bit RGB, whatever the file holds: EXIF orientation is
// applied, grayscale is expanded, alpha is composited onto white, 16-bit is scaled to
// 8-bit, palette PNGs are expanded. Oversized images are refused before decoding.

#include <cstdint>
#include <filesystem>
#include <string>

#include <opencv2/core.hpp>

namespace vtl::data {

/// The pixel limit a default DecodeOptions starts with: 400 megapixels unless a program
/// (e.g. `vtl ... --max-image-pixels N`) sets another one at start-up.
int64_t default_max_pixels();
/// Sets default_max_pixels() for DecodeOptions made afterwards; must be positive.
void set_default_max_pixels(int64_t pixels);

/// Decodes of images above 4 million pixels share one allowance of `pixels` per process
/// (default 256 million, about 2 GB at decoding's peak): a decode waits while the others
/// hold it, and an image larger than the allowance waits to decode alone, so reader
/// threads do not multiply the memory of huge images. Must be positive.
void set_decode_pixel_budget(int64_t pixels);

struct DecodeOptions {
  /// Images with more pixels than this are refused (decompression-bomb guard). PNG and
  /// JPEG sizes are read from the header, so a bomb is refused before any pixel is decoded.
  int64_t max_pixels = default_max_pixels();
  /// When > 0, JPEGs may be decoded at 1/2, 1/4 or 1/8 scale as long as the shorter side
  /// stays >= this many pixels (much faster for large photos).
  int min_short_side = 0;
};

/// Decodes `path` to a CV_8UC3 RGB image. Throws vtl::Error naming the file and the
/// problem (missing, empty, not an image, truncated, damaged, too large).
/// Animated GIFs and WebPs give their first frame.
cv::Mat load_image_rgb(const std::filesystem::path& path, const DecodeOptions& options = {});

/// Same for an in-memory encoded image (an upload); `label` names it in errors.
cv::Mat decode_image_rgb(const std::string& bytes, const std::string& label,
                         const DecodeOptions& options = {});

/// True for the extensions datasets pick up: jpg, jpeg, png, bmp, webp, tif, tiff, gif.
bool has_image_extension(const std::filesystem::path& path);

/// For a file named like an image vtl does not read (heic, avif, svg, psd, ...): why
/// it is left out of a dataset ("HEIC images are not read (...); convert it to PNG").
/// Empty for every other name. Datasets list such files as skipped instead of ignoring
/// them as they do any other file.
std::string unreadable_image_kind(const std::filesystem::path& path);

}  // namespace vtl::data

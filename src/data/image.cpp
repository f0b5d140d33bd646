#include "vtl/data/image.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <optional>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "gif_decoder.h"
#include "image_header.h"
#include "jpeg_decoder.h"
#include "pixel_budget.h"
#include "png_chunks.h"
#include "tiff_review.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/text.h"
#include "webp_animation.h"

namespace vtl::data {
namespace {

std::atomic<int64_t> g_default_max_pixels{20000LL * 20000LL};

/// 16-bit samples to 8 bits: full-range ones scale by 1/257. A 16-bit file whose colour
/// samples all fit in 8 bits holds 8-bit data (scikit-image's chessboard_GRAY_U16.tif,
/// converters that widen without scaling): those are kept as they are, as PIL keeps them,
/// instead of becoming a black image of 0s and 1s. Alpha follows the same rule on its own.
cv::Mat eight_bit_from_sixteen(const cv::Mat& image) {
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  std::vector<double> largest(planes.size());
  for (size_t i = 0; i < planes.size(); ++i) cv::minMaxLoc(planes[i], nullptr, &largest[i]);
  const size_t colour_planes = planes.size() >= 3 ? 3 : 1;  // BGR(A) or grey (+ alpha)
  const double colour_largest = *std::max_element(largest.begin(), largest.begin() + colour_planes);
  for (size_t i = 0; i < planes.size(); ++i) {
    const double plane_largest = i < colour_planes ? colour_largest : largest[i];
    planes[i].convertTo(planes[i], CV_8U, plane_largest <= 255 ? 1.0 : 1.0 / 257.0);
  }
  cv::Mat eight_bit;
  cv::merge(planes, eight_bit);
  return eight_bit;
}

/// Any decoded Mat (8/16-bit or float; 1-4 channels; BGR order) -> CV_8UC3 RGB, with
/// transparency composited onto white.
cv::Mat to_rgb8(cv::Mat image) {
  if (image.depth() == CV_16U) {
    image = eight_bit_from_sixteen(image);
  } else if (image.depth() == CV_32F || image.depth() == CV_64F) {
    image.convertTo(image, CV_8U, 255.0);
  } else if (image.depth() != CV_8U) {
    image.convertTo(image, CV_8U);
  }
  switch (image.channels()) {
    case 1:
      cv::cvtColor(image, image, cv::COLOR_GRAY2RGB);
      return image;
    case 3:
      cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
      return image;
    case 2: {  // gray + alpha
      std::vector<cv::Mat> planes;
      cv::split(image, planes);
      cv::merge(std::vector<cv::Mat>{planes[0], planes[0], planes[0], planes[1]}, image);
      [[fallthrough]];
    }
    case 4: {
      cv::Mat rgb(image.rows, image.cols, CV_8UC3);
      for (int y = 0; y < image.rows; ++y) {
        const auto* in = image.ptr<cv::Vec4b>(y);
        auto* out = rgb.ptr<cv::Vec3b>(y);
        for (int x = 0; x < image.cols; ++x) {
          const int alpha = in[x][3];
          for (int c = 0; c < 3; ++c) {
            // BGRA -> RGB, over white: v * a + 255 * (1 - a)
            out[x][2 - c] =
                static_cast<uint8_t>((in[x][c] * alpha + 255 * (255 - alpha) + 127) / 255);
          }
        }
      }
      return rgb;
    }
    default:
      fail("unsupported channel count {}", image.channels());
  }
}

}  // namespace

int64_t default_max_pixels() { return g_default_max_pixels.load(); }

void set_decode_pixel_budget(int64_t pixels) { decode_pixel_budget().set_capacity(pixels); }

void set_default_max_pixels(int64_t pixels) {
  VTL_CHECK(pixels > 0, "the image pixel limit must be positive (got {})", pixels);
  g_default_max_pixels.store(pixels);
}

bool has_image_extension(const std::filesystem::path& path) {
  const std::string ext = lowercase(path.extension().string());
  static const std::array<const char*, 8> kExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",
                                                         ".webp", ".tif",  ".tiff", ".gif"};
  return std::find(kExtensions.begin(), kExtensions.end(), ext) != kExtensions.end();
}

std::string unreadable_image_kind(const std::filesystem::path& path) {
  const std::string ext = lowercase(path.extension().string());
  static const std::array<std::pair<const char*, const char*>, 18> kKinds = {{
      {".heic", "HEIC"},
      {".heif", "HEIF"},
      {".avif", "AVIF"},
      {".jxl", "JPEG XL"},
      {".jp2", "JPEG 2000"},
      {".j2k", "JPEG 2000"},
      {".svg", "SVG"},
      {".psd", "Photoshop"},
      {".ico", "ICO"},
      {".tga", "TGA"},
      {".pnm", "PNM"},
      {".ppm", "PPM"},
      {".pgm", "PGM"},
      {".exr", "OpenEXR"},
      {".dng", "raw camera"},
      {".cr2", "raw camera"},
      {".nef", "raw camera"},
      {".arw", "raw camera"},
  }};
  for (const auto& [extension, kind] : kKinds) {
    if (ext == extension) {
      return fmt::format(
          "{} images are not read (vtl reads JPEG, PNG, BMP, WebP, TIFF and GIF); convert it "
          "to PNG",
          kind);
    }
  }
  return {};
}

cv::Mat decode_image_rgb(const std::string& bytes, const std::string& label,
                         const DecodeOptions& options) {
  VTL_CHECK(!bytes.empty(), "{}: empty file (0 bytes), not an image", label);
  const ImageFormat format = sniff_image_format(bytes);
  // Only these decoders ever see outside bytes; OpenCV's others (PNM, EXR, JPEG 2000, ...)
  // are refused by content.
  VTL_CHECK(format != ImageFormat::unknown,
            "{}: not a readable image (unknown format, truncated or corrupt; vtl reads JPEG, "
            "PNG, BMP, WebP, TIFF and GIF)",
            label);
  const std::string bmp_problem = format == ImageFormat::bmp ? bmp_header_problem(bytes) : "";
  VTL_CHECK(bmp_problem.empty(), "{}: not a readable image ({})", label, bmp_problem);
  if (format == ImageFormat::tiff) {
    // OpenCV's TIFF decoder converts colour samples with cvtColor, which has no float64.
    const TiffSamples samples = tiff_samples(bytes);
    VTL_CHECK(!(samples.floating && samples.bits == 64 && samples.per_pixel >= 3),
              "{}: TIFF with 64-bit floating-point colour samples, which vtl cannot decode "
              "(save it with 8-, 16- or 32-bit samples, or as PNG)",
              label);
  }
  const DeclaredImageSize size = declared_image_size(bytes, format);
  if (size.width > 0 && size.height > 0) {
    // Divided, not multiplied: two 32-bit header fields can overflow a 64-bit product.
    VTL_CHECK(size.width <= options.max_pixels / size.height,
              "{}: {} image declares {}x{} pixels, more than the limit of {} pixels "
              "(raise it with --max-image-pixels)",
              label, image_format_name(format), size.width, size.height, options.max_pixels);
  }
  const bool is_jpeg = format == ImageFormat::jpeg;
  VTL_CHECK(!is_jpeg || jpeg_is_complete(bytes),
            "{}: truncated JPEG (the file ends before its end-of-image marker)", label);
  VTL_CHECK(format != ImageFormat::tiff || tiff_data_is_complete(bytes),
            "{}: not a readable image (truncated TIFF: its image data runs past the end of the "
            "file)",
            label);
  // OpenCV's WebP decoder asserts (and prints) on a file shorter than its 32-byte header read.
  VTL_CHECK(format != ImageFormat::webp || bytes.size() >= 32,
            "{}: not a readable image (truncated WebP: the file ends inside its header)", label);
  const std::string tiff = format == ImageFormat::tiff ? tiff_problem(bytes) : "";
  VTL_CHECK(tiff.empty(), "{}: not a readable image ({})", label, tiff);
  VTL_CHECK(format != ImageFormat::bmp || bmp_data_is_complete(bytes),
            "{}: not a readable image (truncated BMP: its rows run past the end of the file)",
            label);
  const PngChunkReview png =
      format == ImageFormat::png ? review_png_chunks(bytes) : PngChunkReview{};
  VTL_CHECK(png.problem.empty(), "{}: not a readable image ({})", label, png.problem);
  // JPEGs of a known size may decode at 1/2, 1/4 or 1/8 scale.
  int reduction = 1;
  if (is_jpeg && options.min_short_side > 0 && size.width > 0) {
    const int64_t short_side = std::min(size.width, size.height);
    for (int factor : {8, 4, 2}) {
      if (short_side >= int64_t(factor) * options.min_short_side) {
        reduction = factor;
        break;
      }
    }
  }
  const int64_t decoded_pixels =
      size.width > 0 && size.height > 0 ? size.width * size.height / (reduction * reduction) : 0;
  constexpr int64_t kSmallImagePixels = 4000000;  // decodes without a lease
  const PixelBudget::Lease lease(decode_pixel_budget(),
                                 decoded_pixels > kSmallImagePixels ? decoded_pixels : 0);
  // Every branch gives 8-bit RGB within the pixel limit (libjpeg's, giflib's and libwebp's
  // frames are held to it by their decoders before anything is allocated).
  cv::Mat image;
  if (is_jpeg) {
    image = decode_jpeg_rgb(bytes, reduction, label,
                            options.max_pixels);  // RGB, upright as its EXIF says
  } else if (format == ImageFormat::gif) {
    image = decode_gif_rgb(bytes, label, options.max_pixels);  // the first frame, RGB
  } else if (is_animated_webp(bytes)) {
    image = to_rgb8(decode_animated_webp_bgra(bytes, label, options.max_pixels));
  } else {
    const std::optional<std::string> png_without_metadata =
        png_without_chunks(bytes, png.removable);
    const std::string& encoded = png_without_metadata ? *png_without_metadata : bytes;
    const cv::Mat buffer(1, static_cast<int>(encoded.size()), CV_8U,
                         const_cast<char*>(encoded.data()));
    try {
      image = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
    } catch (const cv::Exception& e) {
      fail("{}: cannot decode image: {}", label, e.err);
    }
    VTL_CHECK(!image.empty() && image.rows > 0 && image.cols > 0,
              "{}: not a readable image (unknown format, truncated or corrupt)", label);
    VTL_CHECK(int64_t(image.rows) * image.cols <= options.max_pixels,
              "{}: image has {}x{} pixels, more than the limit of {} pixels "
              "(raise it with --max-image-pixels)",
              label, image.cols, image.rows, options.max_pixels);
    image = to_rgb8(std::move(image));
  }
  return image;
}

cv::Mat load_image_rgb(const std::filesystem::path& path, const DecodeOptions& options) {
  std::error_code ec;
  VTL_CHECK(std::filesystem::exists(path, ec), "{}: no such file", path.string());
  VTL_CHECK(!std::filesystem::is_directory(path, ec), "{}: is a folder, not an image",
            path.string());
  return decode_image_rgb(read_file(path), path.string(), options);
}

}  // namespace vtl::data

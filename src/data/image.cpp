#include "vtl/data/image.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::data {
namespace {

struct ImageSize {
  int64_t width = 0;
  int64_t height = 0;
};

uint32_t read_be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

bool is_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8 &&
         static_cast<unsigned char>(bytes[2]) == 0xFF;
}

/// Width and height declared in a PNG or JPEG header without decoding pixels; zero when
/// the format is another one or the header cannot be read.
ImageSize declared_size(const std::string& bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 24 && std::memcmp(data, kPng, 8) == 0 &&
      std::memcmp(data + 12, "IHDR", 4) == 0) {
    return {read_be32(data + 16), read_be32(data + 20)};
  }
  if (is_jpeg(bytes)) {
    size_t pos = 2;
    while (pos + 9 < bytes.size()) {
      if (data[pos] != 0xFF) return {};
      const unsigned char marker = data[pos + 1];
      if (marker == 0xFF) {
        ++pos;
        continue;
      }
      const size_t length = (size_t(data[pos + 2]) << 8) | data[pos + 3];
      const bool start_of_frame =
          marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (start_of_frame) {
        return {(int64_t(data[pos + 7]) << 8) | data[pos + 8],
                (int64_t(data[pos + 5]) << 8) | data[pos + 6]};
      }
      pos += 2 + length;
    }
  }
  return {};
}

/// True when a JPEG ends with its end-of-image marker after the first start-of-scan: a
/// file cut short decodes with grey rows (libjpeg only warns), so it is refused instead.
bool jpeg_is_complete(const std::string& bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t pos = 2;
  size_t scan = 0;
  while (pos + 4 <= bytes.size()) {
    if (data[pos] != 0xFF) return true;  // not a marker walk we understand: let OpenCV judge
    const unsigned char marker = data[pos + 1];
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    if (marker == 0xDA) {
      scan = pos;
      break;
    }
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
      pos += 2;
      continue;
    }
    pos += 2 + ((size_t(data[pos + 2]) << 8) | data[pos + 3]);
  }
  if (scan == 0) return false;  // the header itself is cut short
  // Entropy-coded data never holds FF D9 (0xFF is stuffed), so the last FF D9 ends the scans.
  for (size_t i = bytes.size() - 1; i > scan + 1; --i) {
    if (data[i] == 0xD9 && data[i - 1] == 0xFF) return true;
  }
  return false;
}

/// Formats OpenCV cannot decode as a still image, with what to do about them; "" otherwise.
std::string unsupported_format(const std::string& bytes) {
  if (bytes.rfind("GIF87a", 0) == 0 || bytes.rfind("GIF89a", 0) == 0)
    return "GIF images are not supported (convert it to PNG)";
  // RIFF....WEBPVP8X with the animation flag (bit 1 of the first flags byte).
  if (bytes.size() >= 21 && bytes.compare(0, 4, "RIFF") == 0 &&
      bytes.compare(8, 8, "WEBPVP8X") == 0 && (static_cast<unsigned char>(bytes[20]) & 0x02))
    return "animated WebP images are not supported (save one frame as PNG or JPEG)";
  return "";
}

std::atomic<int64_t> g_default_max_pixels{20000LL * 20000LL};

/// Any decoded Mat (8/16-bit or float; 1-4 channels; BGR order) -> CV_8UC3 RGB, with
/// transparency composited onto white.
cv::Mat to_rgb8(cv::Mat image) {
  if (image.depth() == CV_16U) {
    image.convertTo(image, CV_8U, 1.0 / 257.0);
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

void set_default_max_pixels(int64_t pixels) {
  VTL_CHECK(pixels > 0, "the image pixel limit must be positive (got {})", pixels);
  g_default_max_pixels.store(pixels);
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  static const std::array<const char*, 7> kExtensions = {".jpg",  ".jpeg", ".png", ".bmp",
                                                         ".webp", ".tif",  ".tiff"};
  return std::find(kExtensions.begin(), kExtensions.end(), ext) != kExtensions.end();
}

cv::Mat decode_image_rgb(const std::string& bytes, const std::string& label,
                         const DecodeOptions& options) {
  VTL_CHECK(!bytes.empty(), "{}: empty file (0 bytes), not an image", label);
  const std::string unsupported = unsupported_format(bytes);
  VTL_CHECK(unsupported.empty(), "{}: {}", label, unsupported);
  const ImageSize size = declared_size(bytes);
  if (size.width > 0 && size.height > 0) {
    VTL_CHECK(size.width * size.height <= options.max_pixels,
              "{}: image declares {}x{} pixels, more than the limit of {} pixels "
              "(raise it with --max-image-pixels)",
              label, size.width, size.height, options.max_pixels);
  }
  VTL_CHECK(!is_jpeg(bytes) || jpeg_is_complete(bytes),
            "{}: truncated JPEG (the file ends before its end-of-image marker)", label);
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat image;
  try {
    if (is_jpeg(bytes)) {
      // IMREAD_COLOR applies the EXIF orientation; JPEGs have no alpha.
      int flags = cv::IMREAD_COLOR;
      if (options.min_short_side > 0 && size.width > 0) {
        const int64_t short_side = std::min(size.width, size.height);
        if (short_side >= 8LL * options.min_short_side)
          flags = cv::IMREAD_REDUCED_COLOR_8;
        else if (short_side >= 4LL * options.min_short_side)
          flags = cv::IMREAD_REDUCED_COLOR_4;
        else if (short_side >= 2LL * options.min_short_side)
          flags = cv::IMREAD_REDUCED_COLOR_2;
      }
      image = cv::imdecode(buffer, flags);
    } else {
      image = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
    }
  } catch (const cv::Exception& e) {
    fail("{}: cannot decode image: {}", label, e.err);
  }
  VTL_CHECK(!image.empty() && image.rows > 0 && image.cols > 0,
            "{}: not a readable image (unknown format, truncated or corrupt)", label);
  VTL_CHECK(int64_t(image.rows) * image.cols <= options.max_pixels,
            "{}: image has {}x{} pixels, more than the limit of {} pixels "
            "(raise it with --max-image-pixels)",
            label, image.cols, image.rows, options.max_pixels);
  return to_rgb8(std::move(image));
}

cv::Mat load_image_rgb(const std::filesystem::path& path, const DecodeOptions& options) {
  std::error_code ec;
  VTL_CHECK(std::filesystem::exists(path, ec), "{}: no such file", path.string());
  VTL_CHECK(!std::filesystem::is_directory(path, ec), "{}: is a folder, not an image",
            path.string());
  return decode_image_rgb(read_file(path), path.string(), options);
}

}  // namespace vtl::data

// vtl decodes JPEGs with libjpeg itself: the pixels are OpenCV's (colour, grey, progressive,
// restart markers, DCT-scaled, CMYK/YCCK, every EXIF orientation), libjpeg's warnings no
// longer reach stderr, and data damaged enough to leave grey rows is refused by file name.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "capture_stderr.h"
#include "data/jpeg_decoder.h"
#include "error_of.h"
#include "vtl/core/atomic_file.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

using vtl::testing::error_of;
using vtl::testing::stderr_of;

constexpr int64_t kNoLimit = int64_t(1) << 40;

/// An odd-sized image with edges, gradients and noise (BGR, as OpenCV encodes).
cv::Mat textured(int rows, int cols) {
  cv::Mat image(rows, cols, CV_8UC3);
  cv::randu(image, 0, 255);
  cv::GaussianBlur(image, image, cv::Size(5, 5), 1.5);
  cv::rectangle(image, cv::Point(cols / 4, rows / 5), cv::Point(cols / 2, rows / 2),
                cv::Scalar(20, 200, 90), cv::FILLED);
  cv::circle(image, cv::Point(cols * 2 / 3, rows * 2 / 3), rows / 4, cv::Scalar(240, 30, 10), 3);
  return image;
}

std::string jpeg_of(const cv::Mat& image, const std::vector<int>& parameters = {}) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(".jpg", image, buffer, parameters));
  return {buffer.begin(), buffer.end()};
}

/// What OpenCV makes of `bytes` (IMREAD_COLOR, or its 1/`reduction` variant), as RGB.
cv::Mat opencv_rgb(const std::string& bytes, int reduction = 1) {
  const int flags = reduction == 8   ? cv::IMREAD_REDUCED_COLOR_8
                    : reduction == 4 ? cv::IMREAD_REDUCED_COLOR_4
                    : reduction == 2 ? cv::IMREAD_REDUCED_COLOR_2
                                     : cv::IMREAD_COLOR;
  const std::vector<uchar> buffer(bytes.begin(), bytes.end());
  cv::Mat bgr = cv::imdecode(buffer, flags);
  EXPECT_FALSE(bgr.empty());
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

void expect_same_pixels(const cv::Mat& actual, const cv::Mat& expected, const std::string& what) {
  ASSERT_EQ(actual.type(), CV_8UC3) << what;
  ASSERT_EQ(actual.size(), expected.size()) << what;
  EXPECT_EQ(cv::norm(actual, expected, cv::NORM_INF), 0.0) << what;
}

/// A JPEG that libjpeg writes from CMYK samples (YCCK-coded when `ycck`), with the Adobe
/// marker that tells readers how the samples are stored.
std::string cmyk_jpeg(const cv::Mat& cmyk, bool ycck) {
  jpeg_compress_struct encoder{};
  jpeg_error_mgr errors{};
  encoder.err = jpeg_std_error(&errors);
  jpeg_create_compress(&encoder);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&encoder, &out, &size);
  encoder.image_width = static_cast<JDIMENSION>(cmyk.cols);
  encoder.image_height = static_cast<JDIMENSION>(cmyk.rows);
  encoder.input_components = 4;
  encoder.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&encoder);
  jpeg_set_colorspace(&encoder, ycck ? JCS_YCCK : JCS_CMYK);
  jpeg_set_quality(&encoder, 90, TRUE);
  jpeg_start_compress(&encoder, TRUE);
  for (int y = 0; y < cmyk.rows; ++y) {
    JSAMPROW row = const_cast<unsigned char*>(cmyk.ptr<unsigned char>(y));
    jpeg_write_scanlines(&encoder, &row, 1);
  }
  jpeg_finish_compress(&encoder);
  std::string bytes(reinterpret_cast<char*>(out), size);
  jpeg_destroy_compress(&encoder);
  std::free(out);
  return bytes;
}

std::string big_endian_16(int value) { return {char(value >> 8), char(value & 0xFF)}; }

/// An APP1 segment holding an EXIF block whose IFD0 has a dummy tag and the orientation.
std::string exif_segment(int orientation, bool little_endian) {
  const auto u16 = [&](int v) {
    return little_endian ? std::string{char(v & 0xFF), char(v >> 8)} : big_endian_16(v);
  };
  const auto u32 = [&](uint32_t v) {
    return little_endian ? u16(int(v & 0xFFFF)) + u16(int(v >> 16))
                         : u16(int(v >> 16)) + u16(int(v & 0xFFFF));
  };
  std::string tiff = little_endian ? "II" : "MM";
  tiff += u16(42) + u32(8) + u16(2);
  tiff += u16(0x010F) + u16(2) + u32(4) + std::string("vtl\0", 4);  // Make, an ASCII value
  tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0);
  tiff += u32(0);  // no next directory
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  return "\xFF\xE1" + big_endian_16(int(payload.size()) + 2) + payload;
}

/// `jpeg` with `segment` right after its start-of-image marker.
std::string with_segment(const std::string& jpeg, const std::string& segment) {
  return jpeg.substr(0, 2) + segment + jpeg.substr(2);
}

TEST(JpegDecoder, PixelsEqualOpenCvsForEveryKindOfJpegAndScale) {
  const cv::Mat image = textured(61, 97);
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  std::vector<std::pair<std::string, std::string>> files = {
      {"baseline q90", jpeg_of(image)},
      {"q40", jpeg_of(image, {cv::IMWRITE_JPEG_QUALITY, 40})},
      {"progressive", jpeg_of(image, {cv::IMWRITE_JPEG_PROGRESSIVE, 1})},
      {"restart markers", jpeg_of(image, {cv::IMWRITE_JPEG_RST_INTERVAL, 2})},
      {"optimized Huffman", jpeg_of(image, {cv::IMWRITE_JPEG_OPTIMIZE, 1})},
      {"grey", jpeg_of(gray)},
  };
  const std::string clipart = "/usr/share/openclipart/png/food/fruit/an_apple_01.png";
  if (std::filesystem::exists(clipart)) {
    cv::Mat rgb = load_image_rgb(clipart), bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    files.emplace_back("openclipart apple", jpeg_of(bgr));
  }
  for (const auto& [what, bytes] : files) {
    for (int reduction : {1, 2, 4, 8}) {
      expect_same_pixels(decode_jpeg_rgb(bytes, reduction, what, kNoLimit),
                         opencv_rgb(bytes, reduction), what + " at 1/" + std::to_string(reduction));
    }
  }
  // Through the public decoder: JPEGs of a known size decode reduced when the crop allows.
  DecodeOptions half;
  half.min_short_side = 30;
  const cv::Mat reduced = decode_image_rgb(files[0].second, "a.jpg", half);
  EXPECT_EQ(reduced.size(), cv::Size(49, 31));
  expect_same_pixels(reduced, opencv_rgb(files[0].second, 2), "decode_image_rgb at 1/2");
}

TEST(JpegDecoder, CmykAndYcckAreConvertedAsOpenCvDoes) {
  cv::Mat cmyk(23, 41, CV_8UC4);
  cv::randu(cmyk, 0, 255);
  cv::GaussianBlur(cmyk, cmyk, cv::Size(3, 3), 1.0);
  for (bool ycck : {false, true}) {
    const std::string bytes = cmyk_jpeg(cmyk, ycck);
    const std::string what = ycck ? "YCCK" : "CMYK";
    expect_same_pixels(decode_jpeg_rgb(bytes, 1, what, kNoLimit), opencv_rgb(bytes), what);
    expect_same_pixels(decode_jpeg_rgb(bytes, 2, what, kNoLimit), opencv_rgb(bytes, 2),
                       what + " at 1/2");
  }
}

TEST(JpegDecoder, ExifOrientationTurnsTheImageAsOpenCvDoes) {
  const cv::Mat image = textured(30, 44);
  const std::string plain = jpeg_of(image);
  for (bool little_endian : {true, false}) {
    for (int orientation = 1; orientation <= 8; ++orientation) {
      const std::string bytes = with_segment(plain, exif_segment(orientation, little_endian));
      const std::string what =
          std::string(little_endian ? "II" : "MM") + " orientation " + std::to_string(orientation);
      const cv::Mat decoded = decode_jpeg_rgb(bytes, 1, what, kNoLimit);
      expect_same_pixels(decoded, opencv_rgb(bytes), what);
      EXPECT_EQ(decoded.rows, orientation >= 5 ? 44 : 30) << what;
    }
  }
  // An XMP block in the first APP1 does not hide the EXIF block after it.
  const std::string xmp_payload = "http://ns.adobe.com/xap/1.0/" + std::string(1, '\0') + "<x/>";
  const std::string xmp = "\xFF\xE1" + big_endian_16(int(xmp_payload.size()) + 2) + xmp_payload;
  const std::string rotated = with_segment(plain, exif_segment(6, true));
  expect_same_pixels(decode_jpeg_rgb(with_segment(rotated, xmp), 1, "xmp", kNoLimit),
                     decode_jpeg_rgb(rotated, 1, "exif", kNoLimit), "XMP before EXIF");
  // Cut-short or hostile EXIF blocks read as upright, never past their end.
  const std::string segment = exif_segment(6, false);
  const std::string payload = segment.substr(4);
  const auto* data = reinterpret_cast<const unsigned char*>(payload.data());
  EXPECT_EQ(exif_orientation(data, payload.size()), 6);
  for (size_t length = 0; length < payload.size(); ++length) {
    const std::vector<unsigned char> prefix(data, data + length);  // exact-size allocation
    const int orientation = exif_orientation(prefix.data(), prefix.size());
    EXPECT_TRUE(orientation == 1 || orientation == 6) << length;
  }
  std::string huge_offset = payload;
  huge_offset[10] = huge_offset[11] = huge_offset[12] = huge_offset[13] = '\xFF';
  EXPECT_EQ(exif_orientation(reinterpret_cast<const unsigned char*>(huge_offset.data()),
                             huge_offset.size()),
            1);
}

TEST(JpegDecoder, HarmlessWarningsAreSilentAndDamagedDataIsRefusedByName) {
  const cv::Mat image = textured(64, 80);
  const std::string clean = jpeg_of(image);
  ASSERT_EQ(clean.substr(clean.size() - 2), "\xFF\xD9");
  const std::string end_of_image = clean.substr(clean.size() - 2);
  const std::string body = clean.substr(0, clean.size() - 2);

  // Bytes after the scan, as some cameras and editors leave them: libjpeg says "Corrupt JPEG
  // data: 214 extraneous bytes before marker 0xd9" on stderr, with no file name.
  const std::string extraneous = body + std::string(214, '\x00') + end_of_image;
  const std::vector<uchar> raw(extraneous.begin(), extraneous.end());
  const std::string opencv_stderr = stderr_of([&] { cv::imdecode(raw, cv::IMREAD_COLOR); });
  EXPECT_NE(opencv_stderr.find("extraneous bytes"), std::string::npos) << opencv_stderr;
  cv::Mat decoded;
  EXPECT_EQ(stderr_of([&] { decoded = decode_image_rgb(extraneous, "cat.1.jpg"); }), "");
  expect_same_pixels(decoded, opencv_rgb(clean), "extraneous bytes");

  // Half the scan, then the end-of-image marker: libjpeg would fill the rest with grey.
  const std::string cut = body.substr(0, body.size() / 2) + end_of_image;
  std::string message;
  const std::string vtl_stderr =
      stderr_of([&] { message = error_of([&] { decode_image_rgb(cut, "dog.7.jpg"); }); });
  EXPECT_EQ(vtl_stderr, "");
  EXPECT_NE(message.find("dog.7.jpg: damaged JPEG"), std::string::npos) << message;
  EXPECT_NE(message.find("premature end of data segment"), std::string::npos) << message;

  // A restart marker with the wrong number: libjpeg resynchronises and leaves a grey band.
  const std::string restarts = jpeg_of(image, {cv::IMWRITE_JPEG_RST_INTERVAL, 1});
  std::string lost_restart = restarts;
  const size_t second_restart = lost_restart.find("\xFF\xD1", lost_restart.find("\xFF\xDA"));
  ASSERT_NE(second_restart, std::string::npos);
  lost_restart[second_restart + 1] = '\xD5';
  EXPECT_EQ(stderr_of([&] {
              message = error_of([&] { decode_image_rgb(lost_restart, "lost_restart.jpg"); });
            }),
            "");
  EXPECT_NE(message.find("lost_restart.jpg: damaged JPEG"), std::string::npos) << message;

  // A frame header libjpeg cannot decode (12-bit samples): refused, nothing printed.
  std::string twelve_bit = clean;
  const size_t frame = twelve_bit.find("\xFF\xC0");
  ASSERT_NE(frame, std::string::npos);
  twelve_bit[frame + 4] = 12;
  EXPECT_EQ(stderr_of([&] {
              message = error_of([&] { decode_image_rgb(twelve_bit, "twelve_bit.jpg"); });
            }),
            "");
  EXPECT_NE(message.find("twelve_bit.jpg: not a readable image"), std::string::npos) << message;
}

TEST(JpegDecoder, TheFrameLibjpegReadsIsHeldToThePixelLimit) {
  const std::string bytes = jpeg_of(textured(64, 80));
  EXPECT_EQ(error_of([&] { decode_jpeg_rgb(bytes, 1, "a.jpg", 64 * 80); }), "");
  const std::string error = error_of([&] { decode_jpeg_rgb(bytes, 1, "a.jpg", 64 * 80 - 1); });
  EXPECT_NE(error.find("a.jpg: JPEG image has 80x64 pixels, more than the limit of 5119"),
            std::string::npos)
      << error;
  // A file whose segments fool a quick header parse into another frame: libjpeg's frame
  // (65291x65498, 12.8 GB of RGB) is refused before anything is allocated.
  const std::string fooling = read_file(std::filesystem::path(VTL_SOURCE_DIR) / "fuzz" / "corpus" /
                                        "image" / "oom-1651d6b776154647f604001f1f24d8beb34c6f71");
  const std::string refused = error_of([&] { decode_image_rgb(fooling, "fooling.jpg"); });
  EXPECT_NE(refused.find("fooling.jpg: JPEG image has 65291x65498 pixels, more than the limit"),
            std::string::npos)
      << refused;
}

}  // namespace
}  // namespace vtl::data

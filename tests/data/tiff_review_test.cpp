// TIFFs that OpenCV's decoder would fail on while printing to stderr are refused by name
// first (src/data/tiff_review.h); TIFFs it reads pass and decode as before.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "capture_stderr.h"
#include "data/tiff_review.h"
#include "error_of.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

using vtl::testing::error_of;
using vtl::testing::stderr_of;

std::string encoded_tiff(const cv::Mat& image, const std::vector<int>& params = {}) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(".tif", image, buffer, params));
  return {buffer.begin(), buffer.end()};
}

uint32_t le32(const std::string& bytes, size_t at) {
  return uint32_t(uint8_t(bytes[at])) | uint32_t(uint8_t(bytes[at + 1])) << 8 |
         uint32_t(uint8_t(bytes[at + 2])) << 16 | uint32_t(uint8_t(bytes[at + 3])) << 24;
}

/// Offset of the first directory's entry for `tag` in a little-endian TIFF.
size_t entry_of(const std::string& tiff, uint16_t tag) {
  const size_t directory = le32(tiff, 4);
  const size_t entries = uint8_t(tiff[directory]) | uint8_t(tiff[directory + 1]) << 8;
  for (size_t i = 0; i < entries; ++i) {
    const size_t entry = directory + 2 + 12 * i;
    if ((uint8_t(tiff[entry]) | uint8_t(tiff[entry + 1]) << 8) == tag) return entry;
  }
  ADD_FAILURE() << "no tag " << tag;
  return 0;
}

std::string le(uint32_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out += char((value >> (8 * i)) & 0xFF);
  return out;
}

/// An uncompressed little-endian TIFF of 4x2 pixels, one strip, rows of zeros.
std::string raw_tiff(uint16_t bits, uint16_t photometric, uint16_t samples,
                     uint16_t sample_format = 1) {
  const uint32_t width = 4, height = 2;
  const std::string data(height * ((width * samples * bits + 7) / 8), '\0');
  const std::vector<std::pair<uint16_t, uint32_t>> shorts_and_longs = {{256, width},
                                                                       {257, height},
                                                                       {258, bits},
                                                                       {259, 1},
                                                                       {262, photometric},
                                                                       {273, 0},
                                                                       {277, samples},
                                                                       {278, height},
                                                                       {279, uint32_t(data.size())},
                                                                       {339, sample_format}};
  const uint32_t data_at = 8 + 2 + 12 * uint32_t(shorts_and_longs.size()) + 4;
  std::string tiff = "II*" + std::string(1, '\0') + le(8, 4) + le(shorts_and_longs.size(), 2);
  for (const auto& [tag, value] : shorts_and_longs) {
    const bool is_long = tag == 273 || tag == 279;
    tiff += le(tag, 2) + le(is_long ? 4 : 3, 2) + le(1, 4) +
            (is_long ? le(tag == 273 ? data_at : value, 4) : le(value, 2) + le(0, 2));
  }
  return tiff + le(0, 4) + data;
}

cv::Mat gradient(int type) {
  cv::Mat image(40, 30, type);
  image.forEach<uint8_t>([](uint8_t& value, const int* at) { value = uint8_t(at[0] * 5 + at[1]); });
  return image;
}

/// vtl refuses `tiff` with `problem`, printing nothing; OpenCV printed something for it
/// (when `opencv_prints`), or decoded it without a word.
void expect_refused_quietly(const std::string& tiff, const std::string& problem,
                            bool opencv_prints = true) {
  EXPECT_EQ(tiff_problem(tiff).rfind(problem, 0), 0u) << tiff_problem(tiff);
  const std::vector<uchar> raw(tiff.begin(), tiff.end());
  cv::Mat decoded;
  const std::string opencv_says =
      stderr_of([&] { decoded = cv::imdecode(raw, cv::IMREAD_UNCHANGED); });
  EXPECT_EQ(opencv_says.empty(), !opencv_prints) << problem << ": " << opencv_says;
  if (!opencv_prints) EXPECT_FALSE(decoded.empty()) << problem;
  std::string error;
  EXPECT_EQ(stderr_of([&] { error = error_of([&] { decode_image_rgb(tiff, "x.tif"); }); }), "");
  EXPECT_EQ(error.rfind("x.tif: not a readable image (" + problem, 0), 0u) << error;
}

TEST(TiffReview, TiffsOpenCvReadsPassAndDecodeAsBefore) {
  cv::Mat sixteen;
  gradient(CV_8UC1).convertTo(sixteen, CV_16U, 257);
  cv::Mat float_grey;
  gradient(CV_8UC1).convertTo(float_grey, CV_32F, 1.0 / 255);
  for (const cv::Mat& image : {gradient(CV_8UC3), gradient(CV_8UC1), sixteen, float_grey}) {
    for (int compression : {1, 5, 32946}) {  // none, LZW, deflate
      const std::string tiff = encoded_tiff(image, {cv::IMWRITE_TIFF_COMPRESSION, compression});
      EXPECT_EQ(tiff_problem(tiff), "") << image.type() << " " << compression;
      const std::vector<uchar> raw(tiff.begin(), tiff.end());
      const cv::Mat direct = cv::imdecode(raw, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
      EXPECT_EQ(cv::norm(direct, image, cv::NORM_INF), 0) << image.type() << " " << compression;
      EXPECT_EQ(decode_image_rgb(tiff, "ok.tif").size(), image.size());
    }
  }
}

TEST(TiffReview, TiffsOpenCvWouldComplainAboutAreRefusedByName) {
  const std::string clean = encoded_tiff(gradient(CV_8UC3), {cv::IMWRITE_TIFF_COMPRESSION, 5});
  std::string no_photometric = clean;
  no_photometric[entry_of(clean, 262)] = char(263);  // PhotometricInterpretation -> Threshholding
  expect_refused_quietly(no_photometric, "damaged TIFF: it has no photometric interpretation");

  std::string seven_bits = encoded_tiff(gradient(CV_8UC1), {cv::IMWRITE_TIFF_COMPRESSION, 1});
  seven_bits[entry_of(seven_bits, 258) + 8] = 7;  // BitsPerSample
  expect_refused_quietly(seven_bits, "TIFF with 7 bits per sample, which vtl cannot decode");

  // 12-bit CMYK: OpenCV reads layouts other than grey and RGB through libtiff's 8-bit RGBA
  // reader, which refuses 12-bit samples; 12-bit grey it reads as stored.
  EXPECT_EQ(tiff_problem(raw_tiff(12, 1, 1)), "");
  expect_refused_quietly(raw_tiff(12, 5, 4),
                         "TIFF whose colour layout vtl cannot decode (libtiff: ");

  // 8-bit floating-point samples: OpenCV's header check fails (and prints).
  expect_refused_quietly(raw_tiff(8, 1, 1, 3),
                         "TIFF with 8-bit samples in sample format 3, which vtl cannot decode");

  // LZW data scrambled after its first bytes: OpenCV decoded rows of garbage without a word;
  // vtl refuses it, as it refuses a damaged JPEG scan.
  const size_t strips = le32(clean, entry_of(clean, 273) + 8);  // StripOffsets (one strip)
  std::string scrambled = clean;
  for (size_t i = strips + 8; i < strips + 200 && i < clean.size(); ++i) scrambled[i] = char(0xFF);
  expect_refused_quietly(scrambled,
                         "damaged TIFF: the pixels at row 0, column 0 cannot be read (libtiff: ",
                         /*opencv_prints=*/false);
}

}  // namespace
}  // namespace vtl::data

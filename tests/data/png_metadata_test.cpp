// PNG colour-space and text chunks are removed before decoding: libpng's warnings about
// them no longer reach stderr, and the decoded pixels are those of the file without them.

#include <string>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "capture_stderr.h"
#include "data/png_metadata.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

using vtl::testing::stderr_of;

uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string big_endian(uint32_t value) {
  return {char(value >> 24), char(value >> 16), char(value >> 8), char(value)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return big_endian(uint32_t(data.size())) + type + data + big_endian(crc32(type + data));
}

std::string encoded_png(const cv::Mat& image) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(".png", image, buffer));
  return {buffer.begin(), buffer.end()};
}

/// `png` with `chunk` inserted before the chunk that starts at `offset`.
std::string inserted(const std::string& png, size_t offset, const std::string& chunk) {
  return png.substr(0, offset) + chunk + png.substr(offset);
}

cv::Mat gradient() {
  cv::Mat image(5, 7, CV_8UC3);
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) image.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 30, y * 40, 90);
  return image;
}

TEST(PngMetadata, ColourAndTextChunksAreRemovedAndPixelsAreUnchanged) {
  const std::string clean = encoded_png(gradient());
  const size_t after_ihdr = 8 + 12 + 13;
  const size_t iend = clean.size() - 12;
  // An sRGB rendering intent of 9 and a gamma of 0 are invalid; the iCCP profile is junk.
  std::string with_metadata =
      inserted(clean, iend, png_chunk("tEXt", std::string("Comment\0late", 12)));
  with_metadata = inserted(with_metadata, after_ihdr,
                           png_chunk("sRGB", "\x09") + png_chunk("gAMA", big_endian(0)) +
                               png_chunk("iCCP", std::string("junk\0\0xxxx", 11)) +
                               png_chunk("cHRM", std::string(32, '\0')) +
                               png_chunk("zTXt", std::string("k\0\0zz", 5)));

  const auto stripped = png_without_metadata_chunks(with_metadata);
  ASSERT_TRUE(stripped.has_value());
  EXPECT_EQ(*stripped, clean);  // exactly the bytes without the inserted chunks
  EXPECT_FALSE(png_without_metadata_chunks(clean).has_value());

  // libpng complains about these chunks when OpenCV sees them, with no file name...
  const std::vector<uchar> raw(with_metadata.begin(), with_metadata.end());
  const std::string opencv_stderr = stderr_of([&] { cv::imdecode(raw, cv::IMREAD_UNCHANGED); });
  EXPECT_NE(opencv_stderr.find("libpng warning"), std::string::npos) << opencv_stderr;
  // ...and vtl's decoder shows it none of them.
  cv::Mat decoded;
  const std::string vtl_stderr =
      stderr_of([&] { decoded = decode_image_rgb(with_metadata, "with_metadata.png"); });
  EXPECT_EQ(vtl_stderr, "");
  const cv::Mat expected = decode_image_rgb(clean, "clean.png");
  ASSERT_EQ(decoded.size(), expected.size());
  EXPECT_EQ(cv::norm(decoded, expected, cv::NORM_INF), 0.0);
}

TEST(PngMetadata, PaletteAndTransparencyChunksAreKept) {
  const std::string clean = encoded_png(gradient());
  const size_t after_ihdr = 8 + 12 + 13;
  const std::string pixel_chunks = png_chunk("PLTE", std::string(6, '\x10')) +
                                   png_chunk("tRNS", "\x00") + png_chunk("bKGD", "\x00");
  const std::string png =
      inserted(clean, after_ihdr, png_chunk("gAMA", big_endian(45455)) + pixel_chunks);
  const auto stripped = png_without_metadata_chunks(png);
  ASSERT_TRUE(stripped.has_value());
  EXPECT_EQ(*stripped, inserted(clean, after_ihdr, pixel_chunks));
}

TEST(PngMetadata, ChunksRunningPastTheEndAreLeftForTheDecoder) {
  const std::string clean = encoded_png(gradient());
  const size_t after_ihdr = 8 + 12 + 13;
  // A text chunk declaring 4 GiB: it and all after it stay; the decoder refuses the file.
  std::string hostile = clean.substr(0, after_ihdr) + big_endian(0xFFFFFFFFu) + "tEXt" + "abc";
  EXPECT_FALSE(png_without_metadata_chunks(hostile).has_value());
  const std::string dropped_then_cut =
      inserted(clean, after_ihdr, png_chunk("tEXt", "a")).substr(0, after_ihdr + 13 + 20);
  const auto stripped = png_without_metadata_chunks(dropped_then_cut);
  ASSERT_TRUE(stripped.has_value());
  EXPECT_EQ(*stripped, clean.substr(0, after_ihdr + 20));
  for (size_t length = 0; length < clean.size(); ++length) {
    png_without_metadata_chunks(clean.substr(0, length));  // never reads out of bounds
  }
}

}  // namespace
}  // namespace vtl::data

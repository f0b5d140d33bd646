// PNG colour-space and text chunks (and damaged ancillary ones) are removed before
// decoding, and files cut short or with a damaged critical chunk are refused: libpng's
// messages no longer reach stderr, and the decoded pixels are those of the file without
// the removed chunks.

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "capture_stderr.h"
#include "data/png_chunks.h"
#include "error_of.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

using vtl::testing::error_of;
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

TEST(PngChunks, ColourAndTextChunksAreRemovedAndPixelsAreUnchanged) {
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

TEST(PngChunks, PaletteAndTransparencyChunksAreKept) {
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

TEST(PngChunks, ChunksRunningPastTheEndAreLeftForTheDecoder) {
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

TEST(PngChunks, FilesCutShortOrWithABadCrcAreRefusedBeforeLibpngSeesThem) {
  const std::string clean = encoded_png(gradient());
  EXPECT_EQ(png_chunk_problem(clean), "");
  EXPECT_EQ(png_chunk_problem(clean + "trailing bytes after IEND"), "");
  for (size_t length = 8; length < clean.size(); ++length) {
    EXPECT_EQ(png_chunk_problem(clean.substr(0, length)).rfind("truncated PNG: ", 0), 0u) << length;
  }
  const size_t idat = clean.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  EXPECT_EQ(png_chunk_problem(clean.substr(0, idat + 10)),
            "truncated PNG: the file ends inside chunk IDAT");
  std::string flipped = clean;
  flipped[idat + 6] = char(flipped[idat + 6] ^ 0x10);
  EXPECT_EQ(png_chunk_problem(flipped), "corrupt PNG: chunk IDAT fails its CRC check");
  std::string bad_type = clean;
  bad_type[idat + 1] = '\x01';
  EXPECT_EQ(png_chunk_problem(bad_type).rfind("corrupt PNG: the chunk at byte", 0), 0u);

  // Through the decoder: libpng would print "libpng error: ..." lines naming no file.
  const std::string cut = clean.substr(0, idat + 10);
  const std::vector<uchar> raw(cut.begin(), cut.end());
  const std::string opencv_stderr = stderr_of([&] { cv::imdecode(raw, cv::IMREAD_UNCHANGED); });
  EXPECT_NE(opencv_stderr.find("libpng error"), std::string::npos) << opencv_stderr;
  for (const auto& [name, bytes] :
       {std::pair<std::string, std::string>{"cut.png", cut}, {"flipped.png", flipped}}) {
    std::string message;
    EXPECT_EQ(stderr_of([&] { message = error_of([&] { decode_image_rgb(bytes, name); }); }), "");
    EXPECT_EQ(message.rfind(name + ": not a readable image (", 0), 0u) << message;
  }
}

/// A 1x1 palette PNG (colour type 3) whose pixel is palette entry 0; `with_palette` false
/// leaves out its PLTE chunk.
std::string palette_png(bool with_palette) {
  const std::string header("\0\0\0\1\0\0\0\1\x08\x03\0\0\0", 13);
  // zlib stream with one stored block holding the scanline {filter 0, index 0}.
  const std::string data("\x78\x01\x01\x02\x00\xFD\xFF\x00\x00\x00\x02\x00\x01", 13);
  return "\x89PNG\r\n\x1a\n" + png_chunk("IHDR", header) +
         (with_palette ? png_chunk("PLTE", "\x0A\x14\x1E") : "") + png_chunk("IDAT", data) +
         png_chunk("IEND", "");
}

TEST(PngChunks, ChunksInAnOrderLibpngRefusesAreRefusedFirst) {
  const std::string clean = encoded_png(gradient());
  const size_t ihdr_end = 8 + 12 + 13, idat = clean.find("IDAT") - 4, iend = clean.size() - 12;
  ASSERT_EQ(clean.substr(iend + 4, 4), "IEND");
  const std::string ihdr = clean.substr(8, 12 + 13);
  const std::string data = clean.substr(idat, iend - idat);  // the IDAT chunks
  const std::string signature = clean.substr(0, 8);
  const cv::Mat palette_pixels = decode_image_rgb(palette_png(true), "palette.png");
  EXPECT_EQ(palette_pixels.at<cv::Vec3b>(0, 0), cv::Vec3b(10, 20, 30));
  EXPECT_EQ(png_chunk_problem(palette_png(true)), "");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {signature + data + ihdr + png_chunk("IEND", ""),
       "corrupt PNG: its first chunk is IDAT, not IHDR"},
      {inserted(clean, ihdr_end, ihdr), "corrupt PNG: a second IHDR chunk"},
      {clean.substr(0, idat) + clean.substr(iend),
       "corrupt PNG: no image data (IDAT chunk) before IEND"},
      {palette_png(false), "corrupt PNG: a palette image without a PLTE chunk before its data"},
  };
  for (const auto& [png, problem] : cases) {
    EXPECT_EQ(png_chunk_problem(png), problem);
    const std::vector<uchar> raw(png.begin(), png.end());
    const std::string libpng_says = stderr_of([&] { cv::imdecode(raw, cv::IMREAD_UNCHANGED); });
    EXPECT_NE(libpng_says.find("libpng error"), std::string::npos) << problem;
    std::string message;
    EXPECT_EQ(stderr_of([&] { message = error_of([&] { decode_image_rgb(png, "x.png"); }); }), "");
    EXPECT_EQ(message, "x.png: not a readable image (" + problem + ")");
  }
}

TEST(PngChunks, AncillaryChunksWithABadCrcAreDroppedAsLibpngDrops) {
  const std::string clean = encoded_png(gradient());
  const size_t after_ihdr = 8 + 12 + 13;
  std::string physical = png_chunk("pHYs", std::string(9, '\x01'));
  physical[physical.size() - 1] = char(physical[physical.size() - 1] ^ 0xFF);  // CRC broken
  const std::string png = inserted(clean, after_ihdr, physical);
  EXPECT_EQ(png_chunk_problem(png), "");  // ancillary: not a reason to refuse
  const auto stripped = png_without_metadata_chunks(png);
  ASSERT_TRUE(stripped.has_value());
  EXPECT_EQ(*stripped, clean);
  EXPECT_EQ(stderr_of([&] { decode_image_rgb(png, "phys.png"); }), "");
}

}  // namespace
}  // namespace vtl::data

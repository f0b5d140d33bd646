// Image headers read without decoding: format sniffing, declared sizes for every format
// vtl decodes, and decompression bombs in each of them refused before any pixel.

#include <set>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "capture_stderr.h"
#include "data/image_header.h"
#include "vtl/core/error.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

std::string encoded(const cv::Mat& image, const std::string& extension,
                    const std::vector<int>& params = {}) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(extension, image, buffer, params)) << extension;
  return std::string(buffer.begin(), buffer.end());
}

std::string le(uint32_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out += char((value >> (8 * i)) & 0xFF);
  return out;
}

std::string be(uint32_t value, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out += char((value >> (8 * i)) & 0xFF);
  return out;
}

/// RIFF container around one WebP chunk whose payload is `payload`.
std::string webp(const std::string& chunk, const std::string& payload) {
  return "RIFF" + le(uint32_t(12 + payload.size()), 4) + "WEBP" + chunk +
         le(uint32_t(payload.size()), 4) + payload;
}

/// A TIFF holding only an image file directory with width and height (no pixels).
std::string tiff(bool little_endian, uint16_t type, uint32_t width, uint32_t height) {
  const auto u16 = [&](uint32_t v) { return little_endian ? le(v, 2) : be(v, 2); };
  const auto u32 = [&](uint32_t v) { return little_endian ? le(v, 4) : be(v, 4); };
  // A SHORT value sits in the first two bytes of the 4-byte value field.
  const auto value = [&](uint32_t v) { return type == 3 ? u16(v) + u16(0) : u32(v); };
  return std::string(little_endian ? "II" : "MM") + u16(42) + u32(8) + u16(2) + u16(256) +
         u16(type) + u32(1) + value(width) + u16(257) + u16(type) + u32(1) + value(height) + u32(0);
}

std::string decode_error(const std::string& bytes, const std::string& label,
                         int64_t max_pixels = default_max_pixels()) {
  DecodeOptions options;
  options.max_pixels = max_pixels;
  try {
    decode_image_rgb(bytes, label, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ImageHeader, RealEncodingsDeclareTheirTrueSize) {
  cv::Mat bgr(23, 37, CV_8UC3, cv::Scalar(10, 200, 30));
  cv::Mat bgra(23, 37, CV_8UC4, cv::Scalar(10, 200, 30, 128));
  const struct {
    std::string bytes;
    ImageFormat format;
  } cases[] = {
      {encoded(bgr, ".jpg"), ImageFormat::jpeg},
      {encoded(bgr, ".png"), ImageFormat::png},
      {encoded(bgr, ".bmp"), ImageFormat::bmp},
      {encoded(bgra, ".bmp"), ImageFormat::bmp},
      {encoded(bgr, ".tiff"), ImageFormat::tiff},
      {encoded(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 90}), ImageFormat::webp},   // VP8
      {encoded(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}), ImageFormat::webp},  // VP8L
      {encoded(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 90}), ImageFormat::webp},  // VP8X
  };
  std::set<std::string> webp_chunks;
  for (const auto& c : cases) {
    ASSERT_EQ(sniff_image_format(c.bytes), c.format) << image_format_name(c.format);
    const auto size = declared_image_size(c.bytes, c.format);
    EXPECT_EQ(size.width, 37) << image_format_name(c.format);
    EXPECT_EQ(size.height, 23) << image_format_name(c.format);
    if (c.format == ImageFormat::webp) webp_chunks.insert(c.bytes.substr(12, 4));
    // And each of them decodes.
    EXPECT_EQ(decode_error(c.bytes, "ok"), "") << image_format_name(c.format);
  }
  EXPECT_EQ(webp_chunks, (std::set<std::string>{"VP8 ", "VP8L", "VP8X"}));
}

TEST(ImageHeader, BombsInEveryFormatAreRefusedFromTheHeader) {
  std::string bmp = encoded(cv::Mat(4, 4, CV_8UC3, cv::Scalar::all(0)), ".bmp");
  bmp.replace(18, 8, le(30000, 4) + le(uint32_t(-30000), 4));  // top-down rows: negative height
  const struct {
    const char* label;
    std::string bytes;
    const char* declared;
  } bombs[] = {
      {"bomb.bmp", bmp, "BMP image declares 30000x30000"},
      {"bomb-le.tif", tiff(true, 4, 30000, 30000), "TIFF image declares 30000x30000"},
      {"bomb-be.tif", tiff(false, 3, 30000, 30000), "TIFF image declares 30000x30000"},
      {"bomb-vp8x.webp", webp("VP8X", le(0, 4) + le(15999, 3) + le(15999, 3)),
       "WebP image declares 16000x16000"},
      {"bomb-vp8l.webp", webp("VP8L", "\x2F" + le(15999 | (15999u << 14), 4)),
       "WebP image declares 16000x16000"},
      {"bomb-vp8.webp",
       webp("VP8 ", std::string("\x50\x02\x00\x9D\x01\x2A", 6) + le(16000, 2) + le(16000, 2)),
       "WebP image declares 16000x16000"},
  };
  for (const auto& bomb : bombs) {
    const std::string error = decode_error(bomb.bytes, bomb.label, 100'000'000);
    EXPECT_NE(error.find(std::string(bomb.label) + ": " + bomb.declared), std::string::npos)
        << error;
    EXPECT_NE(error.find("--max-image-pixels"), std::string::npos) << error;
  }
}

TEST(ImageHeader, CutShortAndHostileHeadersReadAsUnknownSizes) {
  const std::string tiff_full = tiff(true, 4, 30000, 30000);
  // Every prefix that cuts the header short, and a TIFF whose directory points past the end or
  // claims 65535 entries, give no size (zero) rather than reading outside the bytes.
  const size_t end_of_height_entry = tiff_full.size() - 4;  // before the next-directory link
  for (size_t n = 0; n < end_of_height_entry; ++n) {
    const auto size = declared_image_size(tiff_full.substr(0, n), ImageFormat::tiff);
    EXPECT_TRUE(size.width == 0 || size.height == 0) << n;
  }
  std::string far_directory = tiff_full;
  far_directory.replace(4, 4, le(0xFFFFFFF0u, 4));
  EXPECT_EQ(declared_image_size(far_directory, ImageFormat::tiff).width, 0);
  std::string many_entries = tiff_full;
  many_entries.replace(8, 2, le(0xFFFF, 2));
  EXPECT_EQ(declared_image_size(many_entries, ImageFormat::tiff).width, 30000);
  EXPECT_EQ(declared_image_size(std::string("RIFF\x10\0\0\0WEBPVP8X", 16), ImageFormat::webp).width,
            0);
  EXPECT_EQ(declared_image_size("BM", ImageFormat::bmp).width, 0);
}

/// OpenCV's BMP decoder prints "imdecode_(''): can't read header: ..." for each of these;
/// vtl refuses them first, naming the file and printing nothing.
void expect_refused_quietly(const std::string& bmp, const std::string& problem) {
  EXPECT_EQ(bmp_header_problem(bmp), problem);
  const std::vector<uchar> raw(bmp.begin(), bmp.end());
  const std::string opencv_says =
      vtl::testing::stderr_of([&] { cv::imdecode(raw, cv::IMREAD_UNCHANGED); });
  EXPECT_NE(opencv_says.find("can't read header"), std::string::npos) << problem;
  std::string error;
  EXPECT_EQ(vtl::testing::stderr_of([&] { error = decode_error(bmp, "x.bmp"); }), "") << problem;
  EXPECT_EQ(error, "x.bmp: not a readable image (" + problem + ")");
}

TEST(ImageHeader, BmpWithANonPositiveInfoSizeIsRefusedBeforeOpenCvAssertsOnIt) {
  const std::string bmp = encoded(cv::Mat(6, 5, CV_8UC3, cv::Scalar(10, 20, 30)), ".bmp");
  EXPECT_EQ(bmp_header_problem(bmp), "");
  EXPECT_EQ(decode_error(bmp, "ok.bmp"), "");
  for (uint32_t info_size : {0u, 0x80000000u, 0xFFFFFFFFu}) {
    std::string broken = bmp;
    broken.replace(14, 4, le(info_size, 4));
    expect_refused_quietly(broken, "corrupt BMP: its info header has no valid size");
  }
  EXPECT_EQ(bmp_header_problem("BM"), "corrupt BMP: its info header has no valid size");
}

TEST(ImageHeader, BmpHeadersCutShortOrBeyondOpenCvAreRefusedBeforeItPrints) {
  const std::string colour = encoded(cv::Mat(6, 5, CV_8UC3, cv::Scalar(10, 20, 30)), ".bmp");
  const std::string grey = encoded(cv::Mat(6, 5, CV_8UC1, cv::Scalar(70)), ".bmp");
  EXPECT_EQ(bmp_header_problem(grey), "");  // 8-bit, with a palette of 256 entries
  const std::string cut_short = "truncated BMP: the file ends inside its header";
  for (size_t length : {26, 30, 49}) expect_refused_quietly(colour.substr(0, length), cut_short);
  for (size_t length : {54, 600, 14 + 40 + 1023}) {
    expect_refused_quietly(grey.substr(0, length), cut_short);  // inside the palette
  }
  std::string jpeg_inside = colour;
  jpeg_inside.replace(30, 4, le(4, 4));
  expect_refused_quietly(jpeg_inside,
                         "BMP with compression method 4 (only uncompressed, RLE and bit-field "
                         "BMPs are read; save it as PNG)");
  std::string many_colours = grey;
  many_colours.replace(46, 4, le(257, 4));
  expect_refused_quietly(many_colours,
                         "corrupt BMP: its palette declares 257 colours, at most 256 exist");
  // A core (OS/2) header: 12 bytes, then 3-byte palette entries for 8 bits per pixel.
  const std::string core = "BM" + le(26 + 768 + 8, 4) + le(0, 4) + le(26 + 768, 4) + le(12, 4) +
                           le(2, 2) + le(2, 2) + le(1, 2) + le(8, 2) + std::string(768, '\x40') +
                           std::string(8, '\0');
  EXPECT_EQ(bmp_header_problem(core), "");
  EXPECT_EQ(decode_error(core, "core.bmp"), "");
  expect_refused_quietly(core.substr(0, 26 + 700), cut_short);
}

TEST(ImageHeader, WebpShorterThanItsHeaderIsRefusedBeforeOpenCvAsserts) {
  const std::string webp = encoded(cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)), ".webp");
  const std::string cut = webp.substr(0, 31);
  const std::vector<uchar> raw(cut.begin(), cut.end());
  EXPECT_NE(vtl::testing::stderr_of([&] { cv::imdecode(raw, cv::IMREAD_UNCHANGED); }), "");
  std::string error;
  EXPECT_EQ(vtl::testing::stderr_of([&] { error = decode_error(cut, "x.webp"); }), "");
  EXPECT_EQ(error,
            "x.webp: not a readable image (truncated WebP: the file ends inside its header)");
}

TEST(ImageHeader, FormatsVtlDoesNotDecodeAreRefusedByContent) {
  const cv::Mat bgr(8, 8, CV_8UC3, cv::Scalar::all(90));
  for (const char* extension : {".ppm", ".pgm", ".ras", ".pfm"}) {
    std::vector<uchar> buffer;
    const cv::Mat image = std::string(extension) == ".pgm" ? bgr.col(0).clone() : bgr;
    try {
      if (!cv::imencode(extension, image, buffer)) continue;
    } catch (const cv::Exception&) {
      continue;  // codec not built into this OpenCV
    }
    const std::string bytes(buffer.begin(), buffer.end());
    EXPECT_EQ(sniff_image_format(bytes), ImageFormat::unknown) << extension;
    const std::string error = decode_error(bytes, std::string("x") + extension);
    EXPECT_NE(error.find("not a readable image"), std::string::npos) << error;
    EXPECT_NE(error.find("vtl reads JPEG, PNG, BMP, WebP, TIFF and GIF"), std::string::npos)
        << error;
  }
}

TEST(ImageHeader, TiffSampleLayoutsAreReadAndFloat64ColourIsRefusedByName) {
  struct Case {
    int type;
    double value;  ///< of every sample
    int64_t bits, per_pixel;
    bool floating;
    int decoded;  ///< 8-bit value after decoding
  };
  // 16-bit samples scale by 1/257, float ones by 255.
  for (const Case& c :
       {Case{CV_8UC3, 100, 8, 3, false, 100}, Case{CV_16UC1, 100 * 257, 16, 1, false, 100},
        Case{CV_32FC1, 0.5, 32, 1, true, 128}}) {
    const cv::Mat image(6, 5, c.type, cv::Scalar::all(c.value));
    const std::string bytes = encoded(image, ".tiff");
    const TiffSamples samples = tiff_samples(bytes);
    EXPECT_EQ(samples.bits, c.bits) << c.type;
    EXPECT_EQ(samples.per_pixel, c.per_pixel) << c.type;
    EXPECT_EQ(samples.floating, c.floating) << c.type;
    const cv::Mat rgb = decode_image_rgb(bytes, "x.tiff");
    EXPECT_EQ(rgb.type(), CV_8UC3);
    EXPECT_EQ(rgb.at<cv::Vec3b>(2, 2), cv::Vec3b::all(c.decoded)) << c.type;
  }
  EXPECT_EQ(tiff_samples("\x89PNG").bits, 1);  // not a TIFF: the defaults

  // 64-bit float RGB (as scikit-image writes): OpenCV cannot convert its colours. The
  // header says so before any decoder runs: BitsPerSample and SampleFormat are 3-value
  // arrays at an offset.
  const auto u16 = [](uint32_t v) { return le(v, 2); };
  const auto u32 = [](uint32_t v) { return le(v, 4); };
  const uint32_t arrays = 8 + 2 + 5 * 12 + 4;
  const auto field = [&](uint32_t tag, uint32_t count, const std::string& value) {
    return u16(tag) + u16(3) + u32(count) + value;
  };
  std::string float64 = "II" + u16(42) + u32(8) + u16(5) + field(256, 1, u16(10) + u16(0)) +
                        field(257, 1, u16(10) + u16(0)) + field(258, 3, u32(arrays)) +
                        field(277, 1, u16(3) + u16(0)) + field(339, 3, u32(arrays + 6)) + u32(0) +
                        u16(64) + u16(64) + u16(64) + u16(3) + u16(3) + u16(3);
  const TiffSamples samples = tiff_samples(float64);
  EXPECT_EQ(samples.bits, 64);
  EXPECT_EQ(samples.per_pixel, 3);
  EXPECT_TRUE(samples.floating);
  const std::string error = decode_error(float64, "multipage_rgb.tif");
  EXPECT_NE(error.find("multipage_rgb.tif: TIFF with 64-bit floating-point colour samples"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace vtl::data

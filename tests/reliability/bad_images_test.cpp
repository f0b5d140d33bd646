// Bad and unusual image files, tried one by one (docs/reliability.md): each is decoded or
// refused with a message naming the file and the problem, never a crash.

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "capture_stderr.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/data/image.h"
#include "vtl/data/preprocess.h"

namespace vtl::data {
namespace {

namespace fs = std::filesystem;
using vtl::testing::TempDir;

/// The message of the vtl::Error that load_image_rgb throws ("" when it decodes).
std::string decode_error(const fs::path& path, const DecodeOptions& options = {}) {
  try {
    load_image_rgb(path, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string encoded(const cv::Mat& image, const std::string& extension) {
  std::vector<uchar> buffer;
  cv::imencode(extension, image, buffer);
  return std::string(buffer.begin(), buffer.end());
}

cv::Mat noise(int rows, int cols) {
  cv::Mat image(rows, cols, CV_8UC3);
  cv::randu(image, 0, 255);
  return image;
}

/// Runs a Python + PIL script that writes files into `dir` (python3-pil).
bool write_with_pil(const fs::path& dir, const std::string& body) {
  const fs::path script = dir / "make.py";
  write_bytes(script, "import sys\nfrom PIL import Image\nd = sys.argv[1]\n" + body);
  std::string output;
  const int status = vtl::testing::run_command(
      "/usr/bin/python3 " + script.string() + " " + dir.string(), &output);
  if (status != 0) std::cerr << output;
  return status == 0;
}

TEST(ReliabilityImages, ZeroByteFileIsNamed) {
  TempDir dir("vtl_rel_zero");
  write_bytes(dir / "empty.png", "");
  const std::string error = decode_error(dir / "empty.png");
  EXPECT_NE(error.find("empty.png"), std::string::npos) << error;
  EXPECT_NE(error.find("empty file"), std::string::npos) << error;
}

TEST(ReliabilityImages, TruncatedJpegAndPngAreRefused) {
  TempDir dir("vtl_rel_truncated");
  const std::string jpeg = encoded(noise(48, 64), ".jpg");
  const std::string png = encoded(noise(48, 64), ".png");
  write_bytes(dir / "whole.jpg", jpeg);
  write_bytes(dir / "cut.jpg", jpeg.substr(0, jpeg.size() * 6 / 10));
  write_bytes(dir / "cut.png", png.substr(0, png.size() * 6 / 10));
  write_bytes(dir / "header-only.jpg", jpeg.substr(0, 100));
  EXPECT_EQ(decode_error(dir / "whole.jpg"), "");
  std::string error = decode_error(dir / "cut.jpg");
  EXPECT_NE(error.find("cut.jpg: truncated JPEG"), std::string::npos) << error;
  error = decode_error(dir / "header-only.jpg");
  EXPECT_NE(error.find("header-only.jpg: truncated JPEG"), std::string::npos) << error;
  error = decode_error(dir / "cut.png");
  EXPECT_NE(error.find("cut.png"), std::string::npos) << error;
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
}

// Every decoder's own messages name no file (libpng's, libjpeg's, OpenCV's "imdecode_('')
// can't read data"): a file cut short anywhere is refused with its name, and nothing else
// reaches stderr.
TEST(ReliabilityImages, FilesCutShortInEveryFormatAreNamedAndNothingElseIsPrinted) {
  TempDir dir("vtl_rel_cut_every_format");
  const cv::Mat image = noise(40, 56);
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"png", encoded(image, ".png")},   {"jpg", encoded(image, ".jpg")},
      {"bmp", encoded(image, ".bmp")},   {"gray.bmp", encoded(gray, ".bmp")},
      {"tiff", encoded(image, ".tiff")}, {"webp", encoded(image, ".webp")}};
  for (const auto& [extension, bytes] : files) {
    for (int tenths : {1, 3, 5, 7, 9, 10}) {
      const size_t length = tenths == 10 ? bytes.size() - 1 : bytes.size() * tenths / 10;
      const fs::path file = dir / ("cut" + std::to_string(tenths) + "." + extension);
      write_bytes(file, bytes.substr(0, length));
      std::string error;
      const std::string printed = vtl::testing::stderr_of([&] { error = decode_error(file); });
      EXPECT_EQ(printed, "") << file;
      EXPECT_EQ(error.rfind(file.string() + ": ", 0), 0u) << file << ": " << error;
    }
  }
}

TEST(ReliabilityImages, ContentDecidesTheFormatNotTheExtension) {
  TempDir dir("vtl_rel_extension");
  write_bytes(dir / "really-a-png.jpg", encoded(noise(10, 12), ".png"));
  write_bytes(dir / "text.png", "hello, this is not a picture\n");
  const cv::Mat rgb = load_image_rgb(dir / "really-a-png.jpg");
  EXPECT_EQ(rgb.cols, 12);
  const std::string error = decode_error(dir / "text.png");
  EXPECT_NE(error.find("text.png: not a readable image"), std::string::npos) << error;
}

TEST(ReliabilityImages, OneByOnePixelIsResizedLikeAnyImage) {
  TempDir dir("vtl_rel_tiny");
  cv::imwrite((dir / "dot.png").string(), cv::Mat(1, 1, CV_8UC3, cv::Scalar(0, 0, 255)));
  const cv::Mat rgb = load_image_rgb(dir / "dot.png");
  ASSERT_EQ(rgb.rows, 1);
  Preprocessing p;
  const auto x = eval_transform(rgb, p);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
}

/// A PNG signature and IHDR declaring `side` x `side`, and nothing else: decoding the
/// pixels would fail, so an error naming the size proves the header was checked first.
std::string png_header(uint32_t side) {
  std::string bytes("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (int i = 0; i < 2; ++i)
    for (int shift = 24; shift >= 0; shift -= 8) bytes += char((side >> shift) & 0xFF);
  bytes += std::string("\x08\x02\0\0\0", 5) + std::string(4, '\0');  // 8-bit RGB, CRC
  return bytes;
}

/// SOI + a baseline SOF0 declaring `side` x `side`, 3 components, then EOI.
std::string jpeg_header(uint32_t side) {
  std::string bytes("\xFF\xD8\xFF\xC0\x00\x11\x08", 7);
  for (int i = 0; i < 2; ++i) bytes += {char(side >> 8), char(side & 0xFF)};
  bytes += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xFF\xD9", 12);
  return bytes;
}

TEST(ReliabilityImages, DecompressionBombIsRefusedFromTheHeaderAndTheLimitIsConfigurable) {
  TempDir dir("vtl_rel_bomb");
  write_bytes(dir / "bomb.png", png_header(30000));
  write_bytes(dir / "bomb.jpg", jpeg_header(30000));
  for (const char* name : {"bomb.png", "bomb.jpg"}) {
    const std::string error = decode_error(dir / name);
    EXPECT_NE(error.find(std::string(name) + ": " + (name[5] == 'p' ? "PNG" : "JPEG") +
                         " image declares 30000x30000 pixels"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("--max-image-pixels"), std::string::npos) << error;
  }
  // The limit is configurable: a 3000x3000 header passes the default limit (decoding then
  // fails: there are no pixels) and is refused under a 1-megapixel limit.
  write_bytes(dir / "mid.png", png_header(3000));
  write_bytes(dir / "mid.jpg", jpeg_header(3000));
  for (const char* name : {"mid.png", "mid.jpg"}) {
    const std::string error = decode_error(dir / name);
    EXPECT_NE(error.find(name), std::string::npos) << error;
    EXPECT_EQ(error.find("declares"), std::string::npos) << error;
    DecodeOptions strict;
    strict.max_pixels = 1'000'000;
    const std::string refused = decode_error(dir / name, strict);
    EXPECT_NE(refused.find("declares 3000x3000 pixels"), std::string::npos) << refused;
  }
  // The process-wide default (what --max-image-pixels sets) applies to new options.
  const int64_t before = default_max_pixels();
  set_default_max_pixels(100);
  write_bytes(dir / "small.png", encoded(noise(20, 20), ".png"));
  EXPECT_NE(decode_error(dir / "small.png").find("20x20"), std::string::npos);
  set_default_max_pixels(before);
  EXPECT_EQ(decode_error(dir / "small.png"), "");
  EXPECT_THROW(set_default_max_pixels(0), Error);
}

TEST(ReliabilityImages, SixteenBitColourPngBecomesEightBit) {
  TempDir dir("vtl_rel_16bit");
  cv::Mat bgr16(4, 4, CV_16UC3, cv::Scalar(0, 32768, 65535));
  ASSERT_TRUE(cv::imwrite((dir / "deep.png").string(), bgr16));
  const cv::Mat rgb = load_image_rgb(dir / "deep.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 128, 0));
}

class ReliabilityPil : public ::testing::Test {
 protected:
  void SetUp() override {
    const bool ok = write_with_pil(dir_.path(), R"(
cmyk = Image.new('CMYK', (8, 6), (0, 255, 255, 0))  # red
cmyk.save(d + '/cmyk.jpg', quality=95)
pal = Image.new('P', (6, 4), 0)
pal.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
pal.putpixel((0, 0), 1)
pal.save(d + '/palette.png')
pal.save(d + '/palette-transparent.png', transparency=1)
rotated = Image.new('RGB', (40, 20), (255, 0, 0))
rotated.paste((0, 0, 255), (20, 0, 40, 20))
exif = Image.Exif()
exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
rotated.save(d + '/exif6.jpg', exif=exif.tobytes(), quality=95)
frames = [Image.new('RGB', (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
frames[0].save(d + '/anim.gif', save_all=True, append_images=frames[1:], duration=100, loop=0)
frames[0].save(d + '/anim.webp', save_all=True, append_images=frames[1:], duration=100)
frames[0].save(d + '/still.webp', lossless=True)
rotated.save(d + '/strips.tif', compression='raw')  # PIL: directory first, then strips
clip = Image.open('/usr/share/openclipart/png/food/fruit/an_apple_01.png').convert('RGBA')
clip = clip.resize((90, 80))
clip.save(d + '/clip-interlaced.gif')  # transparent background, interlaced
clip.save(d + '/clip.gif', interlace=False)
white = Image.new('RGBA', clip.size, (255, 255, 255, 255))
Image.alpha_composite(white, clip).convert('RGB').save(d + '/clip-opaque.gif')
Image.alpha_composite(white, clip).convert('L').save(d + '/clip-grey.gif')
clip.save(d + '/clip-anim.webp', save_all=True, append_images=[clip.rotate(90)], lossless=True)
for name in ('clip-interlaced.gif', 'clip.gif', 'clip-opaque.gif', 'clip-grey.gif', 'anim.gif',
             'anim.webp', 'clip-anim.webp'):
    first = Image.open(d + '/' + name).convert('RGBA')
    flat = Image.alpha_composite(Image.new('RGBA', first.size, (255, 255, 255, 255)), first)
    flat.convert('RGB').save(d + '/' + name + '.pil.png')
)");
    if (!ok) GTEST_SKIP() << "/usr/bin/python3 with PIL (python3-pil) is needed";
  }
  TempDir dir_{"vtl_rel_pil"};
};

TEST_F(ReliabilityPil, CmykJpegBecomesRgb) {
  const cv::Mat rgb = load_image_rgb(dir_ / "cmyk.jpg");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  const auto pixel = rgb.at<cv::Vec3b>(3, 4);
  EXPECT_GT(pixel[0], 200) << pixel;
  EXPECT_LT(pixel[1], 60) << pixel;
  EXPECT_LT(pixel[2], 60) << pixel;
}

TEST_F(ReliabilityPil, PalettePngIsExpandedWithItsTransparency) {
  cv::Mat rgb = load_image_rgb(dir_ / "palette.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 255, 0));
  EXPECT_EQ(rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(0, 0, 255));
  rgb = load_image_rgb(dir_ / "palette-transparent.png");
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));  // transparent: white
  EXPECT_EQ(rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(0, 0, 255));
}

TEST_F(ReliabilityPil, ExifOrientationIsApplied) {
  const cv::Mat rgb = load_image_rgb(dir_ / "exif6.jpg");
  ASSERT_EQ(rgb.cols, 20);
  ASSERT_EQ(rgb.rows, 40);
  // Rotated clockwise: the left (red) half is now on top.
  EXPECT_GT(rgb.at<cv::Vec3b>(5, 10)[0], 200);
  EXPECT_GT(rgb.at<cv::Vec3b>(35, 10)[2], 200);
}

// Animated WebPs too: the first frame, PIL's pixels (transparency onto white within 1 of
// PIL's rounding); still WebPs go through OpenCV as before.
TEST_F(ReliabilityPil, AnimatedWebpGivesTheFirstFrameWithPilsPixels) {
  for (const char* name : {"anim.webp", "clip-anim.webp"}) {
    const cv::Mat vtl_rgb = load_image_rgb(dir_ / name);
    const cv::Mat pil_rgb = load_image_rgb(dir_ / (std::string(name) + ".pil.png"));
    ASSERT_EQ(vtl_rgb.size(), pil_rgb.size()) << name;
    EXPECT_LE(cv::norm(vtl_rgb, pil_rgb, cv::NORM_INF), 1.0) << name;
  }
  const cv::Vec3b first = load_image_rgb(dir_ / "anim.webp").at<cv::Vec3b>(4, 4);
  EXPECT_TRUE(first[0] > 230 && first[1] < 20) << first;  // red (lossy), not green
  const std::string whole = read_file(dir_ / "clip-anim.webp");
  write_bytes(dir_ / "cut-anim.webp", whole.substr(0, whole.size() * 6 / 10));
  std::string error;
  EXPECT_EQ(vtl::testing::stderr_of([&] { error = decode_error(dir_ / "cut-anim.webp"); }), "");
  EXPECT_NE(error.find("cut-anim.webp: not a readable image"), std::string::npos) << error;
  EXPECT_EQ(decode_error(dir_ / "still.webp"), "");
}

TEST_F(ReliabilityPil, TiffWhoseStripsRunPastTheEndIsRefusedByName) {
  const std::string whole = read_file(dir_ / "strips.tif");
  EXPECT_EQ(decode_error(dir_ / "strips.tif"), "");
  for (size_t length : {whole.size() * 6 / 10, whole.size() - 1}) {
    write_bytes(dir_ / "cut.tif", whole.substr(0, length));
    std::string error;
    const std::string printed =
        vtl::testing::stderr_of([&] { error = decode_error(dir_ / "cut.tif"); });
    EXPECT_EQ(printed, "") << length;  // OpenCV printed "TIFFReadRGBAStrip" failures
    EXPECT_NE(error.find("cut.tif: not a readable image (truncated TIFF"), std::string::npos)
        << error;
  }
}

// GIFs decode as PIL reads them (Keras and torchvision read GIFs through it): the first
// frame of an animation, palette colours exactly, transparency composited onto white.
TEST_F(ReliabilityPil, GifsGiveTheFirstFrameWithPilsPixels) {
  for (const char* name : {"clip-interlaced", "clip", "clip-opaque", "clip-grey", "anim"}) {
    const fs::path gif = dir_ / (std::string(name) + ".gif");
    const cv::Mat vtl_rgb = load_image_rgb(gif);
    const cv::Mat pil_rgb = load_image_rgb(gif.string() + ".pil.png");
    ASSERT_EQ(vtl_rgb.type(), CV_8UC3) << name;
    ASSERT_EQ(vtl_rgb.size(), pil_rgb.size()) << name;
    EXPECT_EQ(cv::norm(vtl_rgb, pil_rgb, cv::NORM_INF), 0.0) << name;
  }
  const cv::Mat first_frame = load_image_rgb(dir_ / "anim.gif");
  EXPECT_EQ(first_frame.at<cv::Vec3b>(4, 4), cv::Vec3b(255, 0, 0));  // red, not green
  const cv::Mat clip = load_image_rgb(dir_ / "clip.gif");
  EXPECT_EQ(clip.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));  // transparent corner
}

TEST(ReliabilityDataset, SymlinkLoopsAreListedOnceAndReported) {
  TempDir dir("vtl_rel_loop");
  fs::create_directories(dir / "cat" / "sub");
  fs::create_directories(dir / "dog");
  cv::imwrite((dir / "cat" / "a.png").string(), noise(8, 8));
  cv::imwrite((dir / "cat" / "sub" / "b.png").string(), noise(8, 8));
  cv::imwrite((dir / "dog" / "c.png").string(), noise(8, 8));
  fs::create_directory_symlink("..", dir / "cat" / "sub" / "up");  // cat/sub/up -> cat
  fs::create_directory_symlink(dir / "dog", dir / "dog" / "self");
  const auto dataset = scan_class_folders(dir.path());
  EXPECT_EQ(dataset.class_counts(), (std::vector<int64_t>{2, 1}));
  ASSERT_EQ(dataset.skipped.size(), 2u);
  for (const auto& skipped : dataset.skipped)
    EXPECT_NE(skipped.reason.find("symlink loop"), std::string::npos) << skipped.reason;
}

}  // namespace
}  // namespace vtl::data

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "vtl/core/error.h"
#include "vtl/data/image.h"
#include "vtl/data/loader.h"
#include "vtl/data/preprocess.h"

namespace vtl::data {
namespace {

namespace fs = std::filesystem;

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vtl_image_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ImageTest, TransparentPngIsCompositedOntoWhite) {
  cv::Mat bgra(4, 6, CV_8UC4, cv::Scalar(0, 0, 255, 0));  // fully transparent red
  bgra.at<cv::Vec4b>(0, 0) = cv::Vec4b(255, 0, 0, 255);   // one opaque blue pixel
  cv::imwrite((dir_ / "a.png").string(), bgra);
  cv::Mat rgb = load_image_rgb(dir_ / "a.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));  // RGB order
}

TEST_F(ImageTest, SixteenBitAndGrayBecomeEightBitRgb) {
  cv::Mat gray16(5, 5, CV_16UC1, cv::Scalar(65535));
  cv::imwrite((dir_ / "g.png").string(), gray16);
  cv::Mat rgb = load_image_rgb(dir_ / "g.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(2, 2), cv::Vec3b(255, 255, 255));
}

// scikit-image's chessboard_GRAY_U16.tif holds 8-bit values in 16-bit samples: scaled by
// 1/257 it became a black image of 0s and 1s; PIL keeps the values, and so does vtl now.
TEST_F(ImageTest, SixteenBitFilesHoldingEightBitValuesKeepThem) {
  cv::Mat board(4, 6, CV_16UC1);
  for (int y = 0; y < board.rows; ++y)
    for (int x = 0; x < board.cols; ++x) board.at<uint16_t>(y, x) = (x + y) % 2 ? 205 : 44;
  for (const char* name : {"board.png", "board.tif"}) {
    cv::imwrite((dir_ / name).string(), board);
    const cv::Mat rgb = load_image_rgb(dir_ / name);
    EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(44, 44, 44)) << name;
    EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(205, 205, 205)) << name;
  }
  // One sample above 255 makes it full-range 16-bit data: every sample scales by 1/257.
  board.at<uint16_t>(3, 5) = 65535;
  cv::imwrite((dir_ / "wide.png").string(), board);
  const cv::Mat wide = load_image_rgb(dir_ / "wide.png");
  EXPECT_EQ(wide.at<cv::Vec3b>(0, 1), cv::Vec3b(1, 1, 1));  // 205 / 257, rounded
  EXPECT_EQ(wide.at<cv::Vec3b>(3, 5), cv::Vec3b(255, 255, 255));
  // Colour and alpha decide apart: 8-bit colour values under a full-range opaque alpha.
  cv::Mat bgra(2, 2, CV_16UC4, cv::Scalar(30, 60, 90, 65535));
  cv::imwrite((dir_ / "bgra.png").string(), bgra);
  EXPECT_EQ(load_image_rgb(dir_ / "bgra.png").at<cv::Vec3b>(1, 1), cv::Vec3b(90, 60, 30));
}

TEST_F(ImageTest, NotAnImageNamesTheFile) {
  std::ofstream(dir_ / "bad.jpg") << "this is text";
  try {
    load_image_rgb(dir_ / "bad.jpg");
    FAIL() << "expected an error";
  } catch (const vtl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jpg"), std::string::npos);
  }
  EXPECT_THROW(load_image_rgb(dir_ / "missing.png"), vtl::Error);
}

TEST_F(ImageTest, DeclaredSizeAboveLimitIsRefusedBeforeDecoding) {
  cv::Mat image(100, 100, CV_8UC3, cv::Scalar(1, 2, 3));
  cv::imwrite((dir_ / "big.png").string(), image);
  DecodeOptions options;
  options.max_pixels = 50 * 50;
  EXPECT_THROW(load_image_rgb(dir_ / "big.png", options), vtl::Error);
}

TEST_F(ImageTest, EvalTransformResizesShorterSideAndCropsCentre) {
  cv::Mat rgb(300, 400, CV_8UC3, cv::Scalar(255, 0, 0));
  Preprocessing p;
  auto x = eval_transform(rgb, p);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_NEAR(x[0][100][100].item<float>(), (1.0f - 0.485f) / 0.229f, 1e-5);
  EXPECT_NEAR(x[1][100][100].item<float>(), (0.0f - 0.456f) / 0.224f, 1e-5);
}

// The sizes and offsets torchvision.transforms gives (Resize, CenterCrop; printed by
// torchvision 0.14 for these sizes): the longer side rounded down, crop offsets rounded
// half to even as Python's round.
TEST(ResizeCenterCrop, SizesAndOffsetsAreTorchvisions) {
  EXPECT_EQ(shorter_side_resized({443, 667}, 256), cv::Size(256, 385));
  EXPECT_EQ(shorter_side_resized({667, 443}, 256), cv::Size(385, 256));
  EXPECT_EQ(shorter_side_resized({600, 400}, 224), cv::Size(336, 224));
  EXPECT_EQ(shorter_side_resized({111, 159}, 110), cv::Size(110, 157));
  struct Case {
    int width, height, left, top;
  };
  for (const Case c : {Case{157, 110, 30, 7}, Case{159, 111, 32, 8}, Case{158, 110, 31, 7}}) {
    // Pixel (x, y) holds (x, y, 0): the crop's first pixel says where it was cut.
    cv::Mat rgb(c.height, c.width, CV_8UC3);
    for (int y = 0; y < rgb.rows; ++y)
      for (int x = 0; x < rgb.cols; ++x) rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(x, y, 0);
    Preprocessing p;
    p.resize = std::min(c.width, c.height);  // no resampling
    p.crop = 96;
    const cv::Mat crop = resize_center_crop(rgb, p);
    ASSERT_EQ(crop.size(), cv::Size(96, 96));
    EXPECT_EQ(crop.at<cv::Vec3b>(0, 0), cv::Vec3b(c.left, c.top, 0)) << c.width << "x" << c.height;
  }
}

// Training and `vtl evaluate` keep images shrunk to the resize side (ImageStore); their
// centre crop must be the one `vtl predict` cuts from the file itself.
TEST_F(ImageTest, TheStoredImageCropsAsTheFileDoes) {
  cv::Mat noise(671, 450, CV_8UC3);  // 256 x 381.73
  cv::randu(noise, 0, 256);
  cv::imwrite((dir_ / "noise.png").string(), noise);
  Preprocessing p;  // resize 256, crop 224
  const ImageStore store(DecodeOptions{}, p.resize);
  const cv::Mat stored = store.get(dir_ / "noise.png");
  EXPECT_EQ(stored.size(), cv::Size(256, 381));
  EXPECT_TRUE(torch::equal(eval_transform(stored, p), load_eval_input(dir_ / "noise.png", p)));
}

}  // namespace
}  // namespace vtl::data

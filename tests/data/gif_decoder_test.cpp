// GIFs written with giflib itself, for what PIL does not write: a first frame smaller than
// the screen with its own colour table, files cut short, a GIF without frames or colour
// table, and frames larger than the pixel limit. (PIL parity: bad_images_test.)

#include <string>
#include <vector>

#include <gif_lib.h>
#include <gtest/gtest.h>

#include "error_of.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

int append_to_string(GifFileType* gif, const GifByteType* data, int count) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), count);
  return count;
}

struct Frame {
  int left, top, width, height;
  std::vector<GifColorType> local_colours;  // empty: the screen's table
  int transparent_index = NO_TRANSPARENT_COLOR;
  std::vector<GifPixelType> indices;  // width x height, row by row
};

/// A GIF89a of a `width` x `height` screen with `screen_colours` (may be empty) and frames.
std::string gif_file(int width, int height, const std::vector<GifColorType>& screen_colours,
                     const std::vector<Frame>& frames) {
  std::string bytes;
  int error = 0;
  GifFileType* gif = EGifOpen(&bytes, append_to_string, &error);
  EXPECT_NE(gif, nullptr);
  EGifSetGifVersion(gif, true);
  const auto colour_map = [](const std::vector<GifColorType>& colours) -> ColorMapObject* {
    if (colours.empty()) return nullptr;
    return GifMakeMapObject(int(colours.size()), colours.data());
  };
  ColorMapObject* screen_map = colour_map(screen_colours);
  EXPECT_EQ(EGifPutScreenDesc(gif, width, height, 8, 0, screen_map), GIF_OK);
  GifFreeMapObject(screen_map);
  for (const Frame& frame : frames) {
    if (frame.transparent_index != NO_TRANSPARENT_COLOR) {
      GraphicsControlBlock control{};
      control.TransparentColor = frame.transparent_index;
      GifByteType block[4];
      const size_t length = EGifGCBToExtension(&control, block);
      EXPECT_EQ(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, int(length), block), GIF_OK);
    }
    ColorMapObject* local_map = colour_map(frame.local_colours);
    EXPECT_EQ(
        EGifPutImageDesc(gif, frame.left, frame.top, frame.width, frame.height, false, local_map),
        GIF_OK);
    GifFreeMapObject(local_map);
    std::vector<GifPixelType> row(frame.width);
    for (int y = 0; y < frame.height; ++y) {
      std::copy_n(frame.indices.begin() + y * frame.width, frame.width, row.begin());
      EXPECT_EQ(EGifPutLine(gif, row.data(), frame.width), GIF_OK);
    }
  }
  EXPECT_EQ(EGifCloseFile(gif, &error), GIF_OK);
  return bytes;
}

std::string decode_error(const std::string& bytes, const std::string& label,
                         const DecodeOptions& options = {}) {
  return testing::error_of([&] { decode_image_rgb(bytes, label, options); });
}

const cv::Vec3b kWhite(255, 255, 255);

TEST(GifDecoder, FirstFrameIsDrawnAtItsOffsetWithItsOwnColours) {
  const std::vector<GifColorType> screen = {{0, 0, 0}, {9, 9, 9}};
  Frame first{2, 3, 4, 2, {{200, 10, 20}, {30, 40, 250}, {1, 2, 3}, {4, 5, 6}}, 2, {}};
  first.indices = {0, 1, 2, 3,  //
                   1, 0, 2, 3};
  Frame second{0, 0, 10, 8, {}, NO_TRANSPARENT_COLOR, std::vector<GifPixelType>(80, 1)};
  const std::string bytes = gif_file(10, 8, screen, {first, second});
  const cv::Mat rgb = decode_image_rgb(bytes, "offset.gif");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  ASSERT_EQ(rgb.size(), cv::Size(10, 8));
  EXPECT_EQ(rgb.at<cv::Vec3b>(3, 2), cv::Vec3b(200, 10, 20));  // the local table's colours
  EXPECT_EQ(rgb.at<cv::Vec3b>(3, 3), cv::Vec3b(30, 40, 250));
  EXPECT_EQ(rgb.at<cv::Vec3b>(3, 4), kWhite);  // the transparent index
  EXPECT_EQ(rgb.at<cv::Vec3b>(3, 5), cv::Vec3b(4, 5, 6));
  EXPECT_EQ(rgb.at<cv::Vec3b>(4, 2), cv::Vec3b(30, 40, 250));
  EXPECT_EQ(rgb.at<cv::Vec3b>(4, 5), cv::Vec3b(4, 5, 6));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), kWhite);  // screen outside the frame
  EXPECT_EQ(rgb.at<cv::Vec3b>(7, 9), kWhite);
  EXPECT_EQ(rgb.at<cv::Vec3b>(4, 3), cv::Vec3b(200, 10, 20));
  EXPECT_EQ(cv::countNonZero(rgb.reshape(1) != 255), 6 * 3);  // only the 6 opaque pixels
}

TEST(GifDecoder, BrokenAndOversizedGifsAreRefusedByName) {
  const std::vector<GifColorType> colours = {{0, 0, 0}, {255, 0, 0}};
  Frame frame{0, 0, 64, 48, {}, NO_TRANSPARENT_COLOR, std::vector<GifPixelType>(64 * 48)};
  for (size_t i = 0; i < frame.indices.size(); ++i) frame.indices[i] = GifPixelType((i * 7) % 2);
  const std::string whole = gif_file(64, 48, colours, {frame});
  EXPECT_EQ(decode_error(whole, "whole.gif"), "");

  const std::string cut = decode_error(whole.substr(0, whole.size() / 2), "cut.gif");
  EXPECT_NE(cut.find("cut.gif: not a readable image (corrupt GIF"), std::string::npos) << cut;

  const std::string no_frames = decode_error(gif_file(4, 4, colours, {}), "empty.gif");
  EXPECT_NE(no_frames.find("empty.gif: GIF without any image frame"), std::string::npos)
      << no_frames;

  // The same file without its colour table (flag cleared, 2 x 3 bytes removed).
  std::string bare = whole.substr(0, 13) + whole.substr(13 + 6);
  bare[10] = char(bare[10] & 0x7F);
  const std::string colourless = decode_error(bare, "bare.gif");
  EXPECT_NE(colourless.find("bare.gif: not a readable image (GIF frame without a colour table)"),
            std::string::npos)
      << colourless;

  DecodeOptions small;
  small.max_pixels = 1000;
  const std::string screen_too_big = decode_error(whole, "big.gif", small);
  EXPECT_NE(screen_too_big.find("big.gif: GIF image declares 64x48 pixels"), std::string::npos)
      << screen_too_big;
  // A tiny screen whose frame claims to be large: refused before any row is allocated.
  std::string huge_frame = gif_file(4, 4, colours, {Frame{0, 0, 1, 1, {}, -1, {1}}});
  const size_t descriptor = huge_frame.find(',');  // image separator
  ASSERT_NE(descriptor, std::string::npos);
  huge_frame[descriptor + 5] = huge_frame[descriptor + 6] = '\xFF';  // width 65535
  huge_frame[descriptor + 7] = huge_frame[descriptor + 8] = '\xFF';  // height 65535
  const std::string frame_too_big = decode_error(huge_frame, "huge.gif");
  EXPECT_NE(frame_too_big.find("huge.gif: GIF frame declares 65535x65535 pixels"),
            std::string::npos)
      << frame_too_big;
}

}  // namespace
}  // namespace vtl::data

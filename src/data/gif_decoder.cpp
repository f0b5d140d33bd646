#include "gif_decoder.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <gif_lib.h>

#include "vtl/core/error.h"

namespace vtl::data {
namespace {

/// The encoded bytes giflib pulls from, and how far it has read.
struct MemorySource {
  const std::string* bytes;
  size_t position = 0;
};

int read_from_memory(GifFileType* gif, GifByteType* out, int count) {
  auto* source = static_cast<MemorySource*>(gif->UserData);
  const size_t available = source->bytes->size() - source->position;
  const size_t taken = std::min(available, static_cast<size_t>(std::max(count, 0)));
  std::memcpy(out, source->bytes->data() + source->position, taken);
  source->position += taken;
  return static_cast<int>(taken);
}

/// giflib's message for `code`; it has none for some codes (0 among them).
std::string gif_error_text(int code) {
  const char* text = GifErrorString(code);
  return text != nullptr ? text : fmt::format("unreadable image data (giflib error {})", code);
}

/// An open giflib decoder, closed with its scope.
class GifReader {
 public:
  GifReader(const std::string& bytes, const std::string& label) : source_{&bytes} {
    int error = 0;
    gif_ = DGifOpen(&source_, read_from_memory, &error);
    VTL_CHECK(gif_ != nullptr, "{}: not a readable image (corrupt GIF: {})", label,
              gif_error_text(error));
  }
  ~GifReader() {
    int error = 0;
    DGifCloseFile(gif_, &error);
  }
  GifReader(const GifReader&) = delete;
  GifReader& operator=(const GifReader&) = delete;
  GifFileType* operator->() const { return gif_; }
  GifFileType* get() const { return gif_; }

 private:
  MemorySource source_;
  GifFileType* gif_ = nullptr;
};

/// Row order of an interlaced frame: four passes, each from row `first` every `step` rows.
struct InterlacePass {
  int first;
  int step;
};
constexpr InterlacePass kInterlacePasses[] = {{0, 8}, {4, 8}, {2, 4}, {1, 2}};

}  // namespace

cv::Mat decode_gif_rgb(const std::string& bytes, const std::string& label, int64_t max_pixels) {
  GifReader gif(bytes, label);
  const auto fail_with_gif_error = [&]() {
    fail("{}: not a readable image (corrupt GIF: {})", label, gif_error_text(gif->Error));
  };
  int transparent_index = NO_TRANSPARENT_COLOR;
  for (;;) {
    GifRecordType record = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif.get(), &record) == GIF_ERROR) fail_with_gif_error();
    if (record == TERMINATE_RECORD_TYPE) fail("{}: GIF without any image frame", label);
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif.get(), &code, &block) == GIF_ERROR) fail_with_gif_error();
      if (code == GRAPHICS_EXT_FUNC_CODE && block != nullptr && block[0] >= 4) {
        GraphicsControlBlock control{};
        if (DGifExtensionToGCB(block[0], block + 1, &control) == GIF_OK) {
          transparent_index = control.TransparentColor;
        }
      }
      while (block != nullptr) {
        if (DGifGetExtensionNext(gif.get(), &block) == GIF_ERROR) fail_with_gif_error();
      }
      continue;
    }
    if (record != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) fail_with_gif_error();
    break;
  }

  const GifImageDesc& frame = gif->Image;
  const ColorMapObject* colours = frame.ColorMap != nullptr ? frame.ColorMap : gif->SColorMap;
  VTL_CHECK(colours != nullptr && colours->ColorCount > 0,
            "{}: not a readable image (GIF frame without a colour table)", label);
  VTL_CHECK(frame.Width > 0 && frame.Height > 0,
            "{}: not a readable image (GIF frame of {}x{} pixels)", label, frame.Width,
            frame.Height);
  VTL_CHECK(int64_t(frame.Width) * frame.Height <= max_pixels,
            "{}: GIF frame declares {}x{} pixels, more than the limit of {} pixels "
            "(raise it with --max-image-pixels)",
            label, frame.Width, frame.Height, max_pixels);
  // A frame that does not fit the screen (or a screen of 0x0) is shown on its own.
  const bool fits_screen = frame.Left >= 0 && frame.Top >= 0 &&
                           frame.Left + frame.Width <= gif->SWidth &&
                           frame.Top + frame.Height <= gif->SHeight;
  const int left = fits_screen ? frame.Left : 0;
  const int top = fits_screen ? frame.Top : 0;
  cv::Mat rgb(fits_screen ? gif->SHeight : frame.Height, fits_screen ? gif->SWidth : frame.Width,
              CV_8UC3, cv::Scalar(255, 255, 255));

  std::vector<GifPixelType> indices(static_cast<size_t>(frame.Width));
  const auto decode_row = [&](int y) {
    if (DGifGetLine(gif.get(), indices.data(), frame.Width) == GIF_ERROR) fail_with_gif_error();
    auto* out = rgb.ptr<cv::Vec3b>(top + y) + left;
    for (int x = 0; x < frame.Width; ++x) {
      const int index = indices[x];
      if (index == transparent_index) continue;  // stays white
      if (index >= colours->ColorCount) {
        out[x] = cv::Vec3b(0, 0, 0);  // outside the table: black, as PIL pads it
        continue;
      }
      const GifColorType& colour = colours->Colors[index];
      out[x] = cv::Vec3b(colour.Red, colour.Green, colour.Blue);
    }
  };
  if (frame.Interlace) {
    for (const InterlacePass& pass : kInterlacePasses) {
      for (int y = pass.first; y < frame.Height; y += pass.step) decode_row(y);
    }
  } else {
    for (int y = 0; y < frame.Height; ++y) decode_row(y);
  }
  return rgb;
}

}  // namespace vtl::data

#include "webp_animation.h"

#include <webp/demux.h>

#include "vtl/core/error.h"

namespace vtl::data {
namespace {

/// A libwebp animation decoder, deleted with its scope.
class AnimationDecoder {
 public:
  explicit AnimationDecoder(const std::string& bytes) {
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) return;
    options.color_mode = MODE_BGRA;  // OpenCV's channel order
    options.use_threads = 0;
    const WebPData data{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
    decoder_ = WebPAnimDecoderNew(&data, &options);
  }
  ~AnimationDecoder() { WebPAnimDecoderDelete(decoder_); }
  AnimationDecoder(const AnimationDecoder&) = delete;
  AnimationDecoder& operator=(const AnimationDecoder&) = delete;
  WebPAnimDecoder* get() const { return decoder_; }

 private:
  WebPAnimDecoder* decoder_ = nullptr;
};

}  // namespace

cv::Mat decode_animated_webp_bgra(const std::string& bytes, const std::string& label,
                                  int64_t max_pixels) {
  const AnimationDecoder decoder(bytes);
  WebPAnimInfo info{};
  VTL_CHECK(decoder.get() != nullptr && WebPAnimDecoderGetInfo(decoder.get(), &info),
            "{}: not a readable image (corrupt animated WebP)", label);
  VTL_CHECK(int64_t(info.canvas_width) * info.canvas_height <= max_pixels,
            "{}: animated WebP canvas has {}x{} pixels, more than the limit of {} pixels "
            "(raise it with --max-image-pixels)",
            label, info.canvas_width, info.canvas_height, max_pixels);
  VTL_CHECK(info.frame_count > 0, "{}: animated WebP without any frame", label);
  uint8_t* canvas = nullptr;  // BGRA rows of the canvas, owned by the decoder
  int timestamp_ms = 0;
  VTL_CHECK(WebPAnimDecoderGetNext(decoder.get(), &canvas, &timestamp_ms) && canvas != nullptr,
            "{}: not a readable image (the first frame of this animated WebP is corrupt)", label);
  // The canvas belongs to the decoder: copied out before it is deleted.
  return cv::Mat(static_cast<int>(info.canvas_height), static_cast<int>(info.canvas_width), CV_8UC4,
                 canvas)
      .clone();
}

}  // namespace vtl::data

#include "jpeg_decoder.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
// jpeglib.h first: jerror.h uses its types.
#include <jerror.h>
#include <opencv2/core.hpp>

#include "vtl/core/error.h"

namespace vtl::data {
namespace {

constexpr int kApp1 = JPEG_APP0 + 1;

/// libjpeg's error manager, extended: errors jump back to the decode call instead of
/// exiting; messages are kept here instead of printed.
struct ErrorManager {
  jpeg_error_mgr base;  // first: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf on_failure;
  bool damaged = false;  // a warning that data is missing or corrupt ended the decode
  char message[JMSG_LENGTH_MAX] = {};
};

/// Warnings after which part of the image would be grey or garbled.
bool means_damaged_data(int message_code) {
  switch (message_code) {
    case JWRN_JPEG_EOF:        // premature end of JPEG file
    case JWRN_HIT_MARKER:      // premature end of data segment
    case JWRN_HUFF_BAD_CODE:   // bad Huffman code
    case JWRN_ARITH_BAD_CODE:  // bad arithmetic code
    case JWRN_MUST_RESYNC:     // found a marker instead of the expected restart marker
      return true;
    default:
      return false;
  }
}

[[noreturn]] void on_error(j_common_ptr decoder) {
  auto* errors = reinterpret_cast<ErrorManager*>(decoder->err);
  errors->base.format_message(decoder, errors->message);
  std::longjmp(errors->on_failure, 1);
}

/// level -1: a warning; 0 and above: trace messages, never shown.
void on_message(j_common_ptr decoder, int level) {
  if (level >= 0) return;
  auto* errors = reinterpret_cast<ErrorManager*>(decoder->err);
  ++errors->base.num_warnings;
  if (!means_damaged_data(errors->base.msg_code)) return;
  errors->damaged = true;
  errors->base.format_message(decoder, errors->message);
  std::longjmp(errors->on_failure, 1);
}

/// A created decompressor, destroyed with its scope.
struct Decompressor {
  jpeg_decompress_struct state{};
  ErrorManager errors;
  Decompressor() {
    state.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = on_error;
    errors.base.emit_message = on_message;
    jpeg_create_decompress(&state);  // fails only without memory: no jump target yet
  }
  ~Decompressor() { jpeg_destroy_decompress(&state); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

/// The orientation in the first EXIF block among the saved APP1 markers (XMP may come
/// first); 1 without one.
int saved_exif_orientation(const jpeg_decompress_struct* decoder) {
  for (jpeg_saved_marker_ptr marker = decoder->marker_list; marker; marker = marker->next) {
    if (marker->marker == kApp1 && marker->data_length >= 6 &&
        std::memcmp(marker->data, "Exif\0\0", 6) == 0) {
      return exif_orientation(marker->data, marker->data_length);
    }
  }
  return 1;
}

enum class Outcome { decoded, failed, too_large };

/// Libjpeg's calls, with the jump target for its failures. Only trivially destructible
/// locals live in this frame, as longjmp requires. `rows` gets the decoded image: RGB, or
/// CMYK (as Adobe writes it: inverted) when the file has four components; `orientation`
/// its EXIF orientation. Nothing is decoded (too_large) when the frame libjpeg reads has
/// more than `max_pixels` pixels: its header may differ from what a quick parse found.
Outcome decode_rows(jpeg_decompress_struct* decoder, ErrorManager* errors, const std::string& bytes,
                    int reduction, int64_t max_pixels, cv::Mat* rows, int* orientation) {
  if (setjmp(errors->on_failure)) return Outcome::failed;
  jpeg_mem_src(decoder, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(decoder, kApp1, 0xFFFF);
  jpeg_read_header(decoder, TRUE);
  *orientation = saved_exif_orientation(decoder);  // saved markers are freed at the end
  decoder->scale_num = 1;
  decoder->scale_denom = static_cast<unsigned int>(reduction);
  const bool four_components = decoder->num_components == 4;
  decoder->out_color_space = four_components ? JCS_CMYK : JCS_RGB;
  if (int64_t(decoder->image_width) * decoder->image_height > max_pixels) {
    return Outcome::too_large;
  }
  jpeg_start_decompress(decoder);
  rows->create(static_cast<int>(decoder->output_height), static_cast<int>(decoder->output_width),
               four_components ? CV_8UC4 : CV_8UC3);
  while (decoder->output_scanline < decoder->output_height) {
    JSAMPROW row = rows->ptr<unsigned char>(static_cast<int>(decoder->output_scanline));
    jpeg_read_scanlines(decoder, &row, 1);
  }
  jpeg_finish_decompress(decoder);
  return Outcome::decoded;
}

/// Adobe CMYK (inverted, 0 = full ink) to RGB by OpenCV's rule: v = k - (255 - c) * k / 256.
cv::Mat cmyk_to_rgb(const cv::Mat& cmyk) {
  cv::Mat rgb(cmyk.rows, cmyk.cols, CV_8UC3);
  for (int y = 0; y < cmyk.rows; ++y) {
    const auto* in = cmyk.ptr<cv::Vec4b>(y);
    auto* out = rgb.ptr<cv::Vec3b>(y);
    for (int x = 0; x < cmyk.cols; ++x) {
      const int k = in[x][3];
      for (int c = 0; c < 3; ++c)
        out[x][c] = static_cast<uint8_t>(k - (((255 - in[x][c]) * k) >> 8));
    }
  }
  return rgb;
}

/// The image turned upright by OpenCV's rule for each EXIF orientation (1-8).
cv::Mat upright(cv::Mat image, int orientation) {
  if (orientation >= 5 && orientation <= 8) cv::transpose(image, image);
  switch (orientation) {
    case 2:
    case 6:
      cv::flip(image, image, 1);  // around the vertical axis
      break;
    case 3:
    case 7:
      cv::flip(image, image, -1);  // both axes
      break;
    case 4:
    case 8:
      cv::flip(image, image, 0);  // around the horizontal axis
      break;
    default:
      break;
  }
  return image;
}

}  // namespace

int exif_orientation(const unsigned char* app1_payload, size_t size) {
  constexpr size_t kExifHeaderBytes = 6;  // "Exif\0\0"
  if (size < kExifHeaderBytes + 8 || std::memcmp(app1_payload, "Exif\0\0", 6) != 0) return 1;
  const unsigned char* tiff = app1_payload + kExifHeaderBytes;
  const size_t tiff_size = size - kExifHeaderBytes;
  const bool little_endian = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little_endian && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
  const auto read16 = [&](size_t at) -> uint32_t {
    return little_endian ? tiff[at] | (tiff[at + 1] << 8) : (tiff[at] << 8) | tiff[at + 1];
  };
  const auto read32 = [&](size_t at) -> uint64_t {
    return little_endian ? read16(at) | (uint64_t(read16(at + 2)) << 16)
                         : (uint64_t(read16(at)) << 16) | read16(at + 2);
  };
  const uint64_t directory = read32(4);
  if (directory > tiff_size || tiff_size - directory < 2) return 1;
  const uint32_t entries = read16(directory);
  constexpr uint32_t kOrientationTag = 0x0112;
  constexpr size_t kEntryBytes = 12;  // tag, type, count, value
  for (uint32_t i = 0; i < entries; ++i) {
    const uint64_t entry = directory + 2 + uint64_t(i) * kEntryBytes;
    if (entry + kEntryBytes > tiff_size) break;
    if (read16(entry) != kOrientationTag) continue;
    const uint32_t orientation = read16(entry + 8);  // a SHORT, left-justified in the value
    return orientation >= 1 && orientation <= 8 ? int(orientation) : 1;
  }
  return 1;
}

cv::Mat decode_jpeg_rgb(const std::string& bytes, int reduction, const std::string& label,
                        int64_t max_pixels) {
  VTL_CHECK(reduction == 1 || reduction == 2 || reduction == 4 || reduction == 8,
            "JPEG reduction must be 1, 2, 4 or 8 (got {})", reduction);
  Decompressor decoder;
  const ErrorManager& errors = decoder.errors;
  cv::Mat rows;
  int orientation = 1;
  const Outcome outcome = decode_rows(&decoder.state, &decoder.errors, bytes, reduction, max_pixels,
                                      &rows, &orientation);
  VTL_CHECK(outcome != Outcome::too_large,
            "{}: JPEG image has {}x{} pixels, more than the limit of {} pixels (raise it with "
            "--max-image-pixels)",
            label, decoder.state.image_width, decoder.state.image_height, max_pixels);
  VTL_CHECK(!errors.damaged,
            "{}: damaged JPEG, part of the image is missing or corrupt (libjpeg: {})", label,
            errors.message);
  VTL_CHECK(outcome == Outcome::decoded, "{}: not a readable image (corrupt JPEG; libjpeg: {})",
            label, errors.message);
  return upright(rows.channels() == 4 ? cmyk_to_rgb(rows) : std::move(rows), orientation);
}

}  // namespace vtl::data

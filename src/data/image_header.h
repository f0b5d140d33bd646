#pragma once
// What an encoded image's first bytes say, read without decoding any pixel: its format
// (from the content, never the file name) and the width and height its header declares.
// Used to refuse decompression bombs and formats vtl does not decode before OpenCV sees
// the bytes. Every read is bounds-checked: any byte string is a valid argument.

#include <cstdint>
#include <string>

namespace vtl::data {

enum class ImageFormat { unknown, jpeg, png, bmp, webp, tiff, gif };

/// The format the magic bytes announce; unknown for anything else (text, PPM, EXR, ...).
ImageFormat sniff_image_format(const std::string& bytes);

/// "JPEG", "PNG", ...
const char* image_format_name(ImageFormat format);

/// Declared size in pixels; both zero when the header is cut short or unreadable.
struct DeclaredImageSize {
  int64_t width = 0;
  int64_t height = 0;
};

/// The size the header of `bytes` (of `format`) declares: PNG IHDR, JPEG start-of-frame,
/// BMP info header, WebP VP8/VP8L/VP8X, the first TIFF image file directory, the GIF
/// logical screen (zero for unknown formats, which are never decoded).
DeclaredImageSize declared_image_size(const std::string& bytes, ImageFormat format);

/// How a TIFF's first image stores its samples (the TIFF defaults: 1 bit, 1 sample per
/// pixel, unsigned integers; all defaults for other formats).
struct TiffSamples {
  int64_t bits = 1;
  int64_t per_pixel = 1;
  bool floating = false;
};
TiffSamples tiff_samples(const std::string& bytes);

/// True when `bytes` holds an animated WebP (VP8X with the animation flag).
bool is_animated_webp(const std::string& bytes);

/// True when a JPEG ends with its end-of-image marker after the first start-of-scan: a
/// file cut short decodes with grey rows (libjpeg only warns), so it is refused instead.
bool jpeg_is_complete(const std::string& bytes);

/// False when a TIFF's first image has strips or tiles that run past the end of `bytes`
/// (a file cut short); true for anything else, other formats included.
bool tiff_data_is_complete(const std::string& bytes);

/// False when an uncompressed BMP's rows run past the end of `bytes` (a file cut short);
/// true for anything else (compressed BMPs are left to the decoder).
bool bmp_data_is_complete(const std::string& bytes);

/// Why OpenCV's BMP decoder would fail on `bytes` while reading the header, printing
/// "imdecode_(''): can't read header: ..." to stderr: an info-header size that is not
/// positive (a signed 32-bit field), a file that ends inside the header or the palette or
/// colour masks after it, more than 256 palette colours, a compression method above 3 (JPEG,
/// PNG, ...). Empty when the header is whole, or is a layout OpenCV refuses quietly.
std::string bmp_header_problem(const std::string& bytes);

}  // namespace vtl::data

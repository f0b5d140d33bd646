#include "tiff_review.h"

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <tiffio.h>

namespace vtl::data {
namespace {

/// The file's bytes as libtiff reads them, and the first error it reported.
struct MemoryTiff {
  const std::string* bytes;
  uint64_t position = 0;
  std::string first_error;
};

tmsize_t read_bytes(thandle_t handle, void* out, tmsize_t size) {
  auto& file = *static_cast<MemoryTiff*>(handle);
  const uint64_t left = file.bytes->size() - std::min<uint64_t>(file.position, file.bytes->size());
  const uint64_t count = std::min<uint64_t>(left, uint64_t(std::max<tmsize_t>(size, 0)));
  std::memcpy(out, file.bytes->data() + file.position, count);
  file.position += count;
  return static_cast<tmsize_t>(count);
}

tmsize_t write_nothing(thandle_t, void*, tmsize_t) { return 0; }

toff_t seek(thandle_t handle, toff_t offset, int whence) {
  auto& file = *static_cast<MemoryTiff*>(handle);
  const uint64_t base = whence == SEEK_CUR   ? file.position
                        : whence == SEEK_END ? file.bytes->size()
                                             : 0;
  file.position = base + offset;
  return file.position;
}

int close_nothing(thandle_t) { return 0; }

toff_t size_of(thandle_t handle) { return static_cast<MemoryTiff*>(handle)->bytes->size(); }

int map_nothing(thandle_t, void**, toff_t*) { return 0; }

void unmap_nothing(thandle_t, void*, toff_t) {}

int keep_first_error(TIFF*, void* user_data, const char* module, const char* format,
                     va_list arguments) {
  auto& file = *static_cast<MemoryTiff*>(user_data);
  if (file.first_error.empty()) {
    char text[512];
    std::vsnprintf(text, sizeof(text), format, arguments);
    file.first_error = module && *module ? fmt::format("{}: {}", module, text) : text;
  }
  return 1;  // handled: nothing reaches libtiff's (or OpenCV's) global handlers
}

int ignore_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* tiff) const { TIFFClose(tiff); }
};

/// libtiff allocates at most this much in one piece while vtl reads a strip or tile (a
/// strip of a 400-megapixel image at 4 samples of 64 bits is about 13 GB; its rows are
/// what OpenCV would read one strip at a time too).
constexpr tmsize_t kLargestAllocation = tmsize_t(1) << 31;

/// "damaged TIFF: <what>", with libtiff's first error where it gave one.
std::string damaged(const MemoryTiff& file, const std::string& what) {
  return file.first_error.empty()
             ? fmt::format("damaged TIFF: {}", what)
             : fmt::format("damaged TIFF: {} (libtiff: {})", what, file.first_error);
}

/// How OpenCV will read the first image, from its directory's tags.
struct Layout {
  uint32_t width = 0, height = 0;
  bool tiled = false;
  uint32_t piece_width = 0, piece_height = 0;  ///< of a strip (whole rows) or of a tile
  bool read_as_rgba = false;  ///< through libtiff's 8-bit RGBA reader; else as stored
};

/// Why OpenCV cannot decode an image laid out as `tif`'s tags say, from the tags alone;
/// empty when it can, with `layout` filled in.
std::string layout_problem(TIFF* tif, const MemoryTiff& file, Layout& layout) {
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &layout.width) ||
      !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &layout.height) || layout.width == 0 ||
      layout.height == 0) {
    return damaged(file, "it has no image size");
  }
  uint16_t photometric = 0, bits = 1, samples = 1;
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric)) {
    return damaged(file, "it has no photometric interpretation (what its samples mean)");
  }
  TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetField(tif, TIFFTAG_SAMPLESPERPIXEL, &samples);
  static constexpr uint16_t kDecodedBits[] = {1, 8, 10, 12, 14, 16, 32, 64};
  if (std::find(std::begin(kDecodedBits), std::end(kDecodedBits), bits) == std::end(kDecodedBits)) {
    return fmt::format(
        "TIFF with {} bits per sample, which vtl cannot decode (it reads 1, 8, "
        "10, 12, 14, 16, 32 and 64; save it as PNG)",
        bits);
  }
  // Sample formats: 1 unsigned, 2 signed integers, 3 IEEE floating point.
  uint16_t sample_format = SAMPLEFORMAT_UINT;
  TIFFGetField(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
  const bool integers = sample_format == SAMPLEFORMAT_UINT || sample_format == SAMPLEFORMAT_INT;
  const bool format_fits =
      bits == 64   ? sample_format == SAMPLEFORMAT_IEEEFP
      : bits == 32 ? sample_format == SAMPLEFORMAT_IEEEFP || sample_format == SAMPLEFORMAT_INT
                   : integers;
  if (!format_fits) {
    return fmt::format(
        "TIFF with {}-bit samples in sample format {}, which vtl cannot decode "
        "(it reads 8- and 16-bit integers and 32- and 64-bit floating point)",
        bits, sample_format);
  }
  if (samples < 1 || samples > 4) {
    return fmt::format(
        "TIFF with {} samples per pixel, which vtl cannot decode (it reads 1 "
        "to 4)",
        samples);
  }
  // OpenCV reads these through libtiff's 8-bit RGBA reader, deeper samples as stored.
  layout.read_as_rgba =
      bits <= 8 || photometric > PHOTOMETRIC_RGB || (samples != 1 && samples != 3 && samples != 4);
  char refusal[1024] = {};
  if (layout.read_as_rgba && !TIFFRGBAImageOK(tif, refusal)) {
    return fmt::format("TIFF whose colour layout vtl cannot decode (libtiff: {})", refusal);
  }
  layout.tiled = TIFFIsTiled(tif);
  layout.piece_width = layout.width;
  if (layout.tiled) {
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &layout.piece_width);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &layout.piece_height);
  } else {
    TIFFGetField(tif, TIFFTAG_ROWSPERSTRIP, &layout.piece_height);
  }
  if (layout.piece_height == 0 || (!layout.tiled && layout.piece_height > layout.height)) {
    layout.piece_height = layout.height;
  }
  constexpr uint32_t kLargestSide = 1u << 24;  // OpenCV's limit on a strip's or tile's sides
  const uint64_t stored_bytes =
      uint64_t(layout.piece_width) * layout.piece_height * samples * std::max(1, bits / 8);
  if (layout.piece_width == 0 || layout.piece_width > kLargestSide ||
      layout.piece_height > kLargestSide || stored_bytes >= (uint64_t(1) << 30)) {
    return fmt::format(
        "TIFF whose {} are {}x{} pixels, which vtl cannot decode (at most 2^24 "
        "a side and 1 GiB each)",
        layout.tiled ? "tiles" : "strips", layout.piece_width, layout.piece_height);
  }
  return "";
}

/// Why some strip or tile of `tif` cannot be read as OpenCV reads it: what OpenCV would
/// find out halfway through, and data that does not decompress, which OpenCV's RGBA reads
/// turn into rows of garbage. Empty when every one reads.
std::string pieces_problem(TIFF* tif, const MemoryTiff& file, const Layout& layout) {
  if (layout.read_as_rgba) {
    std::vector<uint32_t> rgba(size_t(layout.piece_width) * layout.piece_height);
    // A strip is as wide as the image: one column step.
    for (uint32_t y = 0; y < layout.height; y += layout.piece_height) {
      for (uint32_t x = 0; x < layout.width; x += layout.piece_width) {
        // Stopping at the first error, where OpenCV's call goes on and decodes garbage.
        const int read = layout.tiled ? TIFFReadRGBATileExt(tif, x, y, rgba.data(), 1)
                                      : TIFFReadRGBAStripExt(tif, y, rgba.data(), 1);
        if (!read) {
          return damaged(file, fmt::format("the pixels at row {}, column {} cannot be read", y, x));
        }
      }
    }
    return "";
  }
  const tmsize_t piece_bytes = layout.tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
  const uint32_t pieces = layout.tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
  if (piece_bytes <= 0 || piece_bytes > kLargestAllocation || pieces == 0) {
    return damaged(file,
                   layout.tiled ? "its tiles have no valid size" : "its strips have no valid size");
  }
  std::vector<uint8_t> piece(static_cast<size_t>(piece_bytes));
  for (uint32_t i = 0; i < pieces; ++i) {
    const tmsize_t read = layout.tiled ? TIFFReadEncodedTile(tif, i, piece.data(), piece_bytes)
                                       : TIFFReadEncodedStrip(tif, i, piece.data(), piece_bytes);
    if (read < 0) {
      return damaged(file, fmt::format("{} {} of {} does not decompress",
                                       layout.tiled ? "tile" : "strip", i + 1, pieces));
    }
  }
  return "";
}

}  // namespace

std::string tiff_problem(const std::string& bytes) {
  MemoryTiff file{&bytes, 0, {}};
  std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(),
                                                                       TIFFOpenOptionsFree);
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), keep_first_error, &file);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), ignore_warning, &file);
  TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), kLargestAllocation);
  const std::unique_ptr<TIFF, TiffCloser> tiff(
      TIFFClientOpenExt("tiff", "rm", &file, read_bytes, write_nothing, seek, close_nothing,
                        size_of, map_nothing, unmap_nothing, options.get()));
  if (!tiff) return damaged(file, "its first image directory cannot be read");
  Layout layout;
  const std::string problem = layout_problem(tiff.get(), file, layout);
  return problem.empty() ? pieces_problem(tiff.get(), file, layout) : problem;
}

}  // namespace vtl::data

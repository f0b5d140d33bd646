#include "image_header.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace vtl::data {
namespace {

/// Bounds-checked little- and big-endian reads; 0 past the end of `bytes`.
class ByteReader {
 public:
  explicit ByteReader(const std::string& bytes)
      : data_(reinterpret_cast<const unsigned char*>(bytes.data())), size_(bytes.size()) {}
  bool has(size_t offset, size_t count) const { return offset <= size_ && count <= size_ - offset; }
  uint32_t u8(size_t offset) const { return has(offset, 1) ? data_[offset] : 0; }
  uint32_t le16(size_t offset) const {
    return has(offset, 2) ? data_[offset] | (uint32_t(data_[offset + 1]) << 8) : 0;
  }
  uint32_t be16(size_t offset) const {
    return has(offset, 2) ? (uint32_t(data_[offset]) << 8) | data_[offset + 1] : 0;
  }
  uint32_t le24(size_t offset) const {
    return has(offset, 3) ? le16(offset) | (uint32_t(data_[offset + 2]) << 16) : 0;
  }
  uint32_t le32(size_t offset) const {
    return has(offset, 4) ? le16(offset) | (le16(offset + 2) << 16) : 0;
  }
  uint32_t be32(size_t offset) const {
    return has(offset, 4) ? (be16(offset) << 16) | be16(offset + 2) : 0;
  }
  bool matches(size_t offset, const char* text) const {
    const size_t length = std::strlen(text);
    return has(offset, length) && std::memcmp(data_ + offset, text, length) == 0;
  }
  size_t size() const { return size_; }

 private:
  const unsigned char* data_;
  size_t size_;
};

DeclaredImageSize png_size(const ByteReader& in) {
  if (!in.matches(12, "IHDR")) return {};
  return {in.be32(16), in.be32(20)};
}

DeclaredImageSize jpeg_size(const ByteReader& in) {
  size_t pos = 2;
  while (in.has(pos, 9)) {
    if (in.u8(pos) != 0xFF) return {};
    const uint32_t marker = in.u8(pos + 1);
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    const bool start_of_frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame) return {in.be16(pos + 7), in.be16(pos + 5)};
    pos += 2 + in.be16(pos + 2);
  }
  return {};
}

/// BITMAPCOREHEADER (12 bytes, 16-bit sizes) or BITMAPINFOHEADER and later (32-bit signed
/// sizes; a negative height means top-down rows).
DeclaredImageSize bmp_size(const ByteReader& in) {
  const uint32_t info_size = in.le32(14);
  if (info_size == 12) return {in.le16(18), in.le16(20)};
  if (info_size < 16 || !in.has(18, 8)) return {};
  const int64_t width = static_cast<int32_t>(in.le32(18));
  const int64_t height = static_cast<int32_t>(in.le32(22));
  return {width < 0 ? -width : width, height < 0 ? -height : height};
}

/// RIFF....WEBP then the first chunk: VP8X (extended: canvas size), VP8 (lossy key frame)
/// or VP8L (lossless).
DeclaredImageSize webp_size(const ByteReader& in) {
  if (in.matches(12, "VP8X") && in.has(24, 6)) return {in.le24(24) + 1, in.le24(27) + 1};
  if (in.matches(12, "VP8 ") && in.u8(23) == 0x9D && in.u8(24) == 0x01 && in.u8(25) == 0x2A)
    return {in.le16(26) & 0x3FFF, in.le16(28) & 0x3FFF};
  if (in.matches(12, "VP8L") && in.u8(20) == 0x2F && in.has(21, 4)) {
    const uint32_t bits = in.le32(21);
    return {(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  return {};
}

/// One field of a TIFF image file directory: its SHORT or LONG values, read by index
/// (0 for other types and past the end of the bytes).
class TiffField {
 public:
  TiffField(const ByteReader& in, bool little_endian, size_t entry)
      : in_(in), little_(little_endian) {
    tag = u16(entry);
    type_ = u16(entry + 2);
    count = u32(entry + 4);
    const uint64_t width = type_ == 3 ? 2 : type_ == 4 ? 4 : 0;
    // Values of up to 4 bytes are stored in the entry, longer arrays at an offset.
    at_ = width * count <= 4 ? entry + 8 : u32(entry + 8);
    values_inside_ = width > 0 && in.has(at_, width * count);
  }
  uint32_t tag = 0;
  uint32_t count = 0;
  /// True when all `count` values lie inside the bytes.
  bool values_inside() const { return values_inside_; }
  int64_t value(uint32_t index) const {
    if (index >= count) return 0;
    return type_ == 3   ? u16(at_ + size_t(index) * 2)
           : type_ == 4 ? u32(at_ + size_t(index) * 4)
                        : 0;
  }

 private:
  uint32_t u16(size_t offset) const { return little_ ? in_.le16(offset) : in_.be16(offset); }
  uint32_t u32(size_t offset) const { return little_ ? in_.le32(offset) : in_.be32(offset); }
  const ByteReader& in_;
  bool little_;
  uint32_t type_ = 0;
  size_t at_ = 0;
  bool values_inside_ = false;
};

/// Each field of the first TIFF image file directory, passed to `visit(field)`.
template <typename Visit>
void visit_tiff_fields(const ByteReader& in, Visit visit) {
  const bool little = in.matches(0, "II");
  const size_t directory = little ? in.le32(4) : in.be32(4);
  if (!in.has(directory, 2)) return;
  const uint32_t entries = little ? in.le16(directory) : in.be16(directory);
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t entry = directory + 2 + size_t(i) * 12;
    if (!in.has(entry, 12)) break;
    visit(TiffField(in, little, entry));
  }
}

/// ImageWidth (256) and ImageLength (257) of the first image file directory.
DeclaredImageSize tiff_size(const ByteReader& in) {
  DeclaredImageSize size;
  visit_tiff_fields(in, [&](const TiffField& field) {
    if (field.tag == 256) size.width = field.value(0);
    if (field.tag == 257) size.height = field.value(0);
  });
  return size;
}

}  // namespace

ImageFormat sniff_image_format(const std::string& bytes) {
  const ByteReader in(bytes);
  if (in.u8(0) == 0xFF && in.u8(1) == 0xD8 && in.u8(2) == 0xFF) return ImageFormat::jpeg;
  if (in.matches(0, "\x89PNG\r\n\x1A\n")) return ImageFormat::png;
  if (in.matches(0, "BM") && in.has(0, 26)) return ImageFormat::bmp;
  if (in.matches(0, "RIFF") && in.matches(8, "WEBP")) return ImageFormat::webp;
  if (in.matches(0, "II") && in.u8(2) == 42 && in.u8(3) == 0) return ImageFormat::tiff;
  if (in.matches(0, "MM") && in.u8(2) == 0 && in.u8(3) == 42) return ImageFormat::tiff;
  if (in.matches(0, "GIF87a") || in.matches(0, "GIF89a")) return ImageFormat::gif;
  return ImageFormat::unknown;
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::jpeg:
      return "JPEG";
    case ImageFormat::png:
      return "PNG";
    case ImageFormat::bmp:
      return "BMP";
    case ImageFormat::webp:
      return "WebP";
    case ImageFormat::tiff:
      return "TIFF";
    case ImageFormat::gif:
      return "GIF";
    case ImageFormat::unknown:
      break;
  }
  return "unknown";
}

DeclaredImageSize declared_image_size(const std::string& bytes, ImageFormat format) {
  const ByteReader in(bytes);
  switch (format) {
    case ImageFormat::png:
      return png_size(in);
    case ImageFormat::jpeg:
      return jpeg_size(in);
    case ImageFormat::bmp:
      return bmp_size(in);
    case ImageFormat::webp:
      return webp_size(in);
    case ImageFormat::tiff:
      return tiff_size(in);
    case ImageFormat::gif:  // the logical screen, which the first frame is drawn on
      return in.has(6, 4) ? DeclaredImageSize{in.le16(6), in.le16(8)} : DeclaredImageSize{};
    case ImageFormat::unknown:
      break;
  }
  return {};
}

bool is_animated_webp(const std::string& bytes) {
  const ByteReader in(bytes);
  return in.matches(0, "RIFF") && in.matches(8, "WEBPVP8X") && (in.u8(20) & 0x02);
}

std::string bmp_header_problem(const std::string& bytes) {
  const ByteReader in(bytes);
  const int64_t info_size = static_cast<int32_t>(in.le32(14));
  if (!in.has(14, 4) || info_size <= 0) return "corrupt BMP: its info header has no valid size";
  uint64_t fields_end = 0;    // the end of the header fields OpenCV reads
  uint64_t colour_table = 0;  // bytes of palette or colour masks after the info header
  uint32_t compression = 0;
  if (info_size == 12) {  // BITMAPCOREHEADER: 16-bit sizes, 3-byte palette entries
    fields_end = 26;
    if (in.le16(24) <= 8) colour_table = 3u << in.le16(24);
  } else if (info_size >= 36) {  // BITMAPINFOHEADER and later
    const uint32_t bits = in.le16(28);
    compression = in.le32(30);
    const int64_t colours_used = static_cast<int32_t>(in.le32(46));
    fields_end = bits == 32 && compression == 3 && info_size >= 56 ? 70 : 50;
    if (bits <= 8 && in.has(46, 4)) {
      if (colours_used < 0 || colours_used > 256) {
        return fmt::format("corrupt BMP: its palette declares {} colours, at most 256 exist",
                           colours_used);
      }
      colour_table = 4 * uint64_t(colours_used == 0 ? int64_t(1) << bits : colours_used);
    } else if (bits == 16 && compression == 3) {
      colour_table = 12;  // red, green and blue masks
    }
  } else {
    return "";  // a layout OpenCV refuses quietly
  }
  if (bytes.size() < fields_end || bytes.size() - 14 < uint64_t(info_size) + colour_table) {
    return "truncated BMP: the file ends inside its header";
  }
  if (compression > 3) {
    return fmt::format(
        "BMP with compression method {} (only uncompressed, RLE and bit-field "
        "BMPs are read; save it as PNG)",
        compression);
  }
  return "";
}

bool jpeg_is_complete(const std::string& bytes) {
  const ByteReader in(bytes);
  size_t pos = 2;
  size_t scan = 0;
  while (in.has(pos, 4)) {
    if (in.u8(pos) != 0xFF) return true;  // not a marker walk we understand: let OpenCV judge
    const uint32_t marker = in.u8(pos + 1);
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    if (marker == 0xDA) {
      scan = pos;
      break;
    }
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
      pos += 2;
      continue;
    }
    pos += 2 + in.be16(pos + 2);
  }
  if (scan == 0) return false;  // the header itself is cut short
  // Entropy-coded data never holds FF D9 (0xFF is stuffed), so the last FF D9 ends the scans.
  for (size_t i = in.size() - 1; i > scan + 1; --i) {
    if (in.u8(i) == 0xD9 && in.u8(i - 1) == 0xFF) return true;
  }
  return false;
}

TiffSamples tiff_samples(const std::string& bytes) {
  const ByteReader in(bytes);
  TiffSamples samples;
  if (sniff_image_format(bytes) != ImageFormat::tiff) return samples;
  visit_tiff_fields(in, [&](const TiffField& field) {
    const int64_t value = field.value(0);
    if (field.tag == 258) samples.bits = value;           // BitsPerSample
    if (field.tag == 277) samples.per_pixel = value;      // SamplesPerPixel
    if (field.tag == 339) samples.floating = value == 3;  // SampleFormat: IEEE floating point
  });
  return samples;
}

bool tiff_data_is_complete(const std::string& bytes) {
  const ByteReader in(bytes);
  if (sniff_image_format(bytes) != ImageFormat::tiff) return true;
  bool complete = true;
  std::optional<TiffField> offsets, counts;  // of the strips, or of the tiles
  visit_tiff_fields(in, [&](const TiffField& field) {
    if (field.tag == 273 || field.tag == 324) offsets.emplace(field);
    if (field.tag == 279 || field.tag == 325) counts.emplace(field);
  });
  if (!offsets || !counts) return true;  // not the layout this checks; the decoder decides
  if (!offsets->values_inside() || !counts->values_inside()) return false;
  const uint32_t pieces = std::min(offsets->count, counts->count);
  for (uint32_t i = 0; i < pieces && complete; ++i) {
    const uint64_t begin = uint64_t(offsets->value(i));
    complete = begin <= bytes.size() && uint64_t(counts->value(i)) <= bytes.size() - begin;
  }
  return complete;
}

bool bmp_data_is_complete(const std::string& bytes) {
  const ByteReader in(bytes);
  const uint32_t info_size = in.le32(14);
  const bool os2 = info_size == 12;
  if (!os2 && info_size < 40) return true;  // not a layout this checks
  const uint32_t compression = os2 ? 0 : in.le32(30);
  if (compression != 0 && compression != 3) return true;  // RLE, JPEG or PNG inside: not checked
  const int64_t width = os2 ? in.le16(18) : static_cast<int32_t>(in.le32(18));
  const int64_t height = os2 ? in.le16(20) : static_cast<int32_t>(in.le32(22));
  const int64_t bits = os2 ? in.le16(24) : in.le16(28);
  const uint64_t data_offset = in.le32(10);
  if (width <= 0 || height == 0 || bits == 0) return true;
  const uint64_t row_bytes = (uint64_t(width) * uint64_t(bits) + 31) / 32 * 4;
  const uint64_t rows = uint64_t(height < 0 ? -height : height);
  if (data_offset > bytes.size()) return false;
  return row_bytes <= (bytes.size() - data_offset) / rows;
}

}  // namespace vtl::data

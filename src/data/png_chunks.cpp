#include "png_chunks.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <zlib.h>

namespace vtl::data {
namespace {

constexpr size_t kSignatureBytes = 8;
constexpr size_t kChunkOverheadBytes = 12;  // length, type, CRC

uint32_t big_endian_32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

/// Whether the CRC stored after the chunk at `pos` (of `data_bytes` data bytes, all inside
/// `bytes`) matches its type and data.
bool crc_matches(const std::string& bytes, size_t pos, uint64_t data_bytes) {
  const auto* typed = reinterpret_cast<const Bytef*>(bytes.data() + pos + 4);
  const uLong crc = crc32_z(crc32(0L, Z_NULL, 0), typed, static_cast<z_size_t>(4 + data_bytes));
  return crc == big_endian_32(bytes, pos + 8 + data_bytes);
}

bool is_critical(const std::string& bytes, size_t pos) {
  return !(static_cast<unsigned char>(bytes[pos + 4]) & 0x20);  // upper-case first letter
}

std::string chunk_name(const std::string& bytes, size_t offset) {
  std::string name = bytes.substr(offset, 4);
  for (char& c : name) {
    if (!std::isalpha(static_cast<unsigned char>(c))) c = '?';
  }
  return name;
}

}  // namespace

bool is_png_metadata_chunk(const char type[4]) {
  static constexpr std::array<const char*, 7> kTypes = {"iCCP", "sRGB", "cHRM", "gAMA",
                                                        "tEXt", "zTXt", "iTXt"};
  for (const char* metadata : kTypes) {
    if (std::memcmp(type, metadata, 4) == 0) return true;
  }
  return false;
}

PngChunkReview review_png_chunks(const std::string& bytes) {
  PngChunkReview review;
  const auto note = [&](std::string problem) {
    if (review.problem.empty()) review.problem = std::move(problem);
  };
  size_t pos = kSignatureBytes;
  bool seen_header = false, seen_palette = false, seen_data = false;
  bool palette_image = false;  // IHDR's colour type 3: IDAT needs a PLTE before it
  while (true) {
    if (pos >= bytes.size()) {
      note("truncated PNG: the file ends before its IEND chunk");
      return review;
    }
    if (bytes.size() - pos < kChunkOverheadBytes) {
      note("truncated PNG: the file ends inside a chunk header");
      return review;
    }
    const uint64_t data_bytes = big_endian_32(bytes, pos);
    const std::string name = chunk_name(bytes, pos + 4);
    if (name.find('?') != std::string::npos) {
      note(fmt::format("corrupt PNG: the chunk at byte {} has no valid type", pos));
    }
    if (data_bytes + kChunkOverheadBytes > bytes.size() - pos) {
      note(fmt::format("truncated PNG: the file ends inside chunk {}", name));
      return review;
    }
    const bool crc_ok = crc_matches(bytes, pos, data_bytes);
    const bool critical = is_critical(bytes, pos);
    if (critical && !crc_ok) note(fmt::format("corrupt PNG: chunk {} fails its CRC check", name));
    if (is_png_metadata_chunk(bytes.data() + pos + 4) || (!critical && !crc_ok)) {
      review.removable.emplace_back(pos, pos + data_bytes + kChunkOverheadBytes);
    }
    // The chunk order libpng insists on (it fails with "IEND: out of place", "IDAT: Missing
    // IHDR before IDAT", ...); the rest of the order it checks itself, quietly.
    if (!seen_header && name != "IHDR") {
      note(fmt::format("corrupt PNG: its first chunk is {}, not IHDR", name));
    } else if (seen_header && name == "IHDR") {
      note("corrupt PNG: a second IHDR chunk");
    } else if (name == "IHDR") {
      seen_header = true;
      palette_image = data_bytes >= 10 && bytes[pos + 8 + 9] == 3;
    } else if (name == "PLTE") {
      seen_palette = true;
    } else if (name == "IDAT") {
      if (palette_image && !seen_palette) {
        note("corrupt PNG: a palette image without a PLTE chunk before its data");
      }
      seen_data = true;
    } else if (name == "IEND" && !seen_data) {
      note("corrupt PNG: no image data (IDAT chunk) before IEND");
    }
    if (name == "IEND") return review;
    pos += data_bytes + kChunkOverheadBytes;
  }
}

std::optional<std::string> png_without_chunks(
    const std::string& bytes, const std::vector<std::pair<size_t, size_t>>& ranges) {
  if (ranges.empty()) return std::nullopt;
  std::string kept;
  kept.reserve(bytes.size());
  size_t from = 0;
  for (const auto& [begin, end] : ranges) {
    kept.append(bytes, from, begin - from);
    from = end;
  }
  kept.append(bytes, from, std::string::npos);
  return kept;
}

std::optional<std::string> png_without_metadata_chunks(const std::string& bytes) {
  return png_without_chunks(bytes, review_png_chunks(bytes).removable);
}

std::string png_chunk_problem(const std::string& bytes) { return review_png_chunks(bytes).problem; }

}  // namespace vtl::data

#include "png_metadata.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace vtl::data {
namespace {

constexpr size_t kSignatureBytes = 8;
constexpr size_t kChunkOverheadBytes = 12;  // length, type, CRC

uint32_t big_endian_32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
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

std::optional<std::string> png_without_metadata_chunks(const std::string& bytes) {
  // Byte ranges [begin, end) of the chunks to drop, in file order.
  std::vector<std::pair<size_t, size_t>> dropped;
  size_t pos = kSignatureBytes;
  while (pos <= bytes.size() && bytes.size() - pos >= kChunkOverheadBytes) {
    const uint64_t chunk_bytes = uint64_t(big_endian_32(bytes, pos)) + kChunkOverheadBytes;
    if (chunk_bytes > bytes.size() - pos) break;
    if (is_png_metadata_chunk(bytes.data() + pos + 4)) dropped.emplace_back(pos, pos + chunk_bytes);
    if (std::memcmp(bytes.data() + pos + 4, "IEND", 4) == 0) break;
    pos += chunk_bytes;
  }
  if (dropped.empty()) return std::nullopt;
  std::string kept;
  kept.reserve(bytes.size());
  size_t from = 0;
  for (const auto& [begin, end] : dropped) {
    kept.append(bytes, from, begin - from);
    from = end;
  }
  kept.append(bytes, from, std::string::npos);
  return kept;
}

}  // namespace vtl::data

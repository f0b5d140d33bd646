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

std::optional<std::string> png_without_metadata_chunks(const std::string& bytes) {
  // Byte ranges [begin, end) of the chunks to drop, in file order.
  std::vector<std::pair<size_t, size_t>> dropped;
  size_t pos = kSignatureBytes;
  while (pos <= bytes.size() && bytes.size() - pos >= kChunkOverheadBytes) {
    const uint64_t chunk_bytes = uint64_t(big_endian_32(bytes, pos)) + kChunkOverheadBytes;
    if (chunk_bytes > bytes.size() - pos) break;
    const bool damaged_ancillary =
        !is_critical(bytes, pos) && !crc_matches(bytes, pos, chunk_bytes - kChunkOverheadBytes);
    if (is_png_metadata_chunk(bytes.data() + pos + 4) || damaged_ancillary) {
      dropped.emplace_back(pos, pos + chunk_bytes);
    }
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

std::string png_chunk_problem(const std::string& bytes) {
  size_t pos = kSignatureBytes;
  while (true) {
    if (pos >= bytes.size()) return "truncated PNG: the file ends before its IEND chunk";
    if (bytes.size() - pos < kChunkOverheadBytes) {
      return "truncated PNG: the file ends inside a chunk header";
    }
    const uint64_t data_bytes = big_endian_32(bytes, pos);
    const std::string name = chunk_name(bytes, pos + 4);
    if (name.find('?') != std::string::npos) {
      return fmt::format("corrupt PNG: the chunk at byte {} has no valid type", pos);
    }
    if (data_bytes + kChunkOverheadBytes > bytes.size() - pos) {
      return fmt::format("truncated PNG: the file ends inside chunk {}", name);
    }
    if (is_critical(bytes, pos) && !crc_matches(bytes, pos, data_bytes)) {
      return fmt::format("corrupt PNG: chunk {} fails its CRC check", name);
    }
    if (name == "IEND") return {};
    pos += data_bytes + kChunkOverheadBytes;
  }
}

}  // namespace vtl::data

#include "zip_archive.h"

#include <algorithm>

#include "vtl/core/error.h"

namespace vtl::weights::detail {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

Directory find_directory(const ByteView& file) {
  const size_t min_record = 22;
  VTL_CHECK(file.size() >= min_record, "{}: not a valid zip archive (only {} bytes)", file.name(),
            file.size());
  // The end record sits at the end, followed by a comment of at most 65535 bytes.
  const uint64_t last = file.size() - min_record;
  const uint64_t first = last > 65535 ? last - 65535 : 0;
  for (uint64_t pos = last + 1; pos-- > first;) {
    if (file.u32(pos, "zip end record") != kEndOfDirectory) continue;
    Directory dir;
    dir.entries = file.u16(pos + 10, "zip end record");
    dir.size = file.u32(pos + 12, "zip end record");
    dir.offset = file.u32(pos + 16, "zip end record");
    const bool zip64 = dir.entries == 0xFFFF || dir.size == 0xFFFFFFFF || dir.offset == 0xFFFFFFFF;
    if (zip64 || (pos >= 20 && file.u32(pos - 20, "zip64 locator") == kZip64Locator)) {
      VTL_CHECK(pos >= 20 && file.u32(pos - 20, "zip64 locator") == kZip64Locator,
                "{}: not a valid zip archive (zip64 locator missing)", file.name());
      const uint64_t end64 = file.u64(pos - 20 + 8, "zip64 locator");
      VTL_CHECK(file.u32(end64, "zip64 end record") == kZip64End,
                "{}: not a valid zip archive (bad zip64 end record)", file.name());
      dir.entries = file.u64(end64 + 32, "zip64 end record");
      dir.size = file.u64(end64 + 40, "zip64 end record");
      dir.offset = file.u64(end64 + 48, "zip64 end record");
    }
    file.require(dir.offset, dir.size, "zip central directory");
    // Each central record takes at least 46 bytes: a huge count is a lie.
    VTL_CHECK(dir.entries <= dir.size / 46, "{}: not a valid zip archive ({} entries claimed)",
              file.name(), dir.entries);
    return dir;
  }
  fail("{}: not a valid zip archive (no end-of-directory record; truncated?)", file.name());
}

}  // namespace

bool looks_like_zip(const ByteView& bytes) {
  return bytes.size() >= 4 && bytes.u32(0, "magic") == kLocalHeader;
}

std::map<std::string, ByteView> read_zip_entries(const ByteView& file) {
  const Directory dir = find_directory(file);
  std::map<std::string, ByteView> entries;
  uint64_t pos = dir.offset;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    VTL_CHECK(file.u32(pos, "zip central record") == kCentralHeader,
              "{}: not a valid zip archive (bad central record {})", file.name(), i);
    const uint16_t method = file.u16(pos + 10, "zip central record");
    uint64_t compressed = file.u32(pos + 20, "zip central record");
    uint64_t size = file.u32(pos + 24, "zip central record");
    const uint16_t name_length = file.u16(pos + 28, "zip central record");
    const uint16_t extra_length = file.u16(pos + 30, "zip central record");
    const uint16_t comment_length = file.u16(pos + 32, "zip central record");
    uint64_t local = file.u32(pos + 42, "zip central record");
    std::string name(file.string(pos + 46, name_length, "zip entry name"));

    // zip64 extra field: 64-bit values for the fields saturated above, in this order.
    const ByteView extra = file.sub(pos + 46 + name_length, extra_length, "zip extra field");
    for (uint64_t at = 0; at + 4 <= extra.size();) {
      const uint16_t id = extra.u16(at, "zip extra field");
      const uint16_t length = extra.u16(at + 2, "zip extra field");
      const ByteView field = extra.sub(at + 4, length, "zip extra field");
      if (id == 0x0001) {
        uint64_t f = 0;
        if (size == 0xFFFFFFFF) size = field.u64(8 * f++, "zip64 extra field");
        if (compressed == 0xFFFFFFFF) compressed = field.u64(8 * f++, "zip64 extra field");
        if (local == 0xFFFFFFFF) local = field.u64(8 * f++, "zip64 extra field");
      }
      at += 4 + length;
    }
    VTL_CHECK(method == 0 && compressed == size,
              "{}: zip entry '{}' is compressed (method {}); torch.save writes stored entries "
              "only; re-save the file with torch.save",
              file.name(), name, method);
    VTL_CHECK(file.u32(local, "zip local header") == kLocalHeader,
              "{}: not a valid zip archive (bad local header of '{}')", file.name(), name);
    const uint64_t data = local + 30 + file.u16(local + 26, "zip local header") +
                          file.u16(local + 28, "zip local header");
    ByteView bytes = file.sub(data, size, "zip entry data");
    VTL_CHECK(entries.emplace(name, bytes).second, "{}: zip entry '{}' appears twice", file.name(),
              name);
    pos += 46 + uint64_t{name_length} + extra_length + comment_length;
  }
  return entries;
}

}  // namespace vtl::weights::detail

#pragma once
// Read-only memory map of a whole file, with bounds-checked access. Every reader of an
// untrusted weights file goes through ByteView so that a malformed length or offset turns
// into a vtl::Error naming the file, never an out-of-bounds read.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

namespace vtl::weights::detail {

/// A window into bytes owned elsewhere (a MappedFile). `name` is used in error messages.
class ByteView {
 public:
  ByteView() = default;
  ByteView(const uint8_t* data, size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }

  /// Bytes [offset, offset + length); throws vtl::Error when out of range.
  ByteView sub(uint64_t offset, uint64_t length, const char* what) const;
  /// Little-endian integers at `offset`; throw vtl::Error when out of range.
  uint16_t u16(uint64_t offset, const char* what) const;
  uint32_t u32(uint64_t offset, const char* what) const;
  uint64_t u64(uint64_t offset, const char* what) const;
  std::string_view string(uint64_t offset, uint64_t length, const char* what) const;

  /// Throws vtl::Error("<name>: <what> lies beyond the end of the file ...") unless
  /// [offset, offset + length) fits.
  void require(uint64_t offset, uint64_t length, const char* what) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
};

/// Maps `path` read-only; throws vtl::Error naming the file when it cannot be opened.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  ByteView view() const { return ByteView(data_, size_, path_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;
};

}  // namespace vtl::weights::detail

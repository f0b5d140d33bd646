#include "mapped_file.h"

#include <cerrno>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vtl/core/error.h"

namespace vtl::weights::detail {

void ByteView::require(uint64_t offset, uint64_t length, const char* what) const {
  if (offset > size_ || length > size_ - offset) {
    fail(
        "{}: {} (bytes {}..{}) lies beyond the end of the data ({} bytes); the file is "
        "truncated or corrupt",
        name_, what, offset, offset + length, size_);
  }
}

ByteView ByteView::sub(uint64_t offset, uint64_t length, const char* what) const {
  require(offset, length, what);
  return ByteView(data_ + offset, static_cast<size_t>(length), name_);
}

uint16_t ByteView::u16(uint64_t offset, const char* what) const {
  require(offset, 2, what);
  return static_cast<uint16_t>(data_[offset] | (data_[offset + 1] << 8));
}

uint32_t ByteView::u32(uint64_t offset, const char* what) const {
  require(offset, 4, what);
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | data_[offset + i];
  return value;
}

uint64_t ByteView::u64(uint64_t offset, const char* what) const {
  require(offset, 8, what);
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | data_[offset + i];
  return value;
}

std::string_view ByteView::string(uint64_t offset, uint64_t length, const char* what) const {
  require(offset, length, what);
  return std::string_view(reinterpret_cast<const char*>(data_ + offset), length);
}

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path.string()) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open weights file {}: {}", path_, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot read weights file {}: not a regular file", path_);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      int error = errno;
      ::close(fd);
      fail("cannot map weights file {}: {}", path_, std::strerror(error));
    }
    mapping_ = mapping;
    data_ = static_cast<const uint8_t*>(mapping);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (mapping_) ::munmap(mapping_, size_);
}

}  // namespace vtl::weights::detail

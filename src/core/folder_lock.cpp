#include "vtl/core/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vtl/core/error.h"

namespace vtl {

FolderLock::FolderLock(const std::filesystem::path& dir, const std::string& who,
                       const std::string& advice) {
  const std::filesystem::path path = dir / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  VTL_CHECK(fd_ >= 0, "cannot open {}: {}", path.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    ::close(fd_);
    fail("another {} is writing into {} (process {}); {}", who, dir.string(),
         n > 0 ? std::string(holder, size_t(n)) : "?", advice);
  }
  // Who holds the lock, for the message of the next one (best effort).
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

FolderLock::~FolderLock() { ::close(fd_); }

}  // namespace vtl

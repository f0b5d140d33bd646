#pragma once
// One writer per output folder (a training run, an index): an exclusive advisory lock on
// `dir/.lock`, held while the object lives and released with the process however it ends.

#include <filesystem>
#include <string>

namespace vtl {

class FolderLock {
 public:
  /// Takes the lock on `dir/.lock` (created; `dir` must exist) or throws vtl::Error at
  /// once, without waiting: "another <who> is writing into <dir> (process N); <advice>".
  FolderLock(const std::filesystem::path& dir, const std::string& who, const std::string& advice);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace vtl

#pragma once
// Test helpers with no vtl dependency: scratch folders and shell commands.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace vtl::testing {

namespace fs = std::filesystem;

/// A fresh empty folder under the system temp dir, named `<name>_<pid>_<n>`; the
/// destructor removes it with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              (name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }
  fs::path path_;
};

/// Runs a shell command, returns its exit status (-1 when it did not exit normally) and
/// fills `output` with stdout and stderr together.
inline int run_command(const std::string& command, std::string* output = nullptr) {
  std::string text;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  const int status = ::pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace vtl::testing

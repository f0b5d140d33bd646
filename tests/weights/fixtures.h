#pragma once
// Shared helpers of the weights tests: fixtures written by Python torch at test time, and
// temporary folders.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

namespace vtl::weights::testing {

/// A fresh empty folder under the system temp dir, removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ =
        std::filesystem::temp_directory_path() /
        ("vtl-weights-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Runs a shell command, returns its exit status.
inline int run(const std::string& command) { return std::system(command.c_str()); }

/// Folder with the files of tests/weights/make_fixtures.py, written once per process.
inline const std::filesystem::path& pth_fixtures() {
  static TempDir dir("fixtures");
  static const bool made = [] {
    const std::string command = std::string("/usr/bin/python3 ") + VTL_SOURCE_DIR +
                                "/tests/weights/make_fixtures.py " + dir.path().string() +
                                " >/dev/null";
    return run(command) == 0;
  }();
  EXPECT_TRUE(made) << "tests/weights/make_fixtures.py failed (needs /usr/bin/python3 with torch)";
  return dir.path();
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), bytes.size());
}

}  // namespace vtl::weights::testing

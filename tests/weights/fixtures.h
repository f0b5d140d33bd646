#pragma once
// Shared helpers of the weights tests: fixtures written by Python torch at test time.

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace vtl::weights::testing {

using vtl::testing::run_command;
using vtl::testing::TempDir;

/// Folder with the files of tests/weights/make_fixtures.py, written once per process.
inline const std::filesystem::path& pth_fixtures() {
  static TempDir dir("vtl_weights_fixtures");
  static const bool made = [] {
    const std::string command = std::string("/usr/bin/python3 ") + VTL_SOURCE_DIR +
                                "/tests/weights/make_fixtures.py " + dir.path().string() +
                                " >/dev/null";
    return run_command(command) == 0;
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

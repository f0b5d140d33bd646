#pragma once
// A small solid-colour PNG for dataset tests (listing, labels, splits: pixels do not matter).

#include <filesystem>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace vtl::testing {

/// Writes a 30x20 PNG whose colour is derived from `value` (0-255), creating its folder.
inline void write_png(const std::filesystem::path& path, int value) {
  std::filesystem::create_directories(path.parent_path());
  cv::Mat image(20, 30, CV_8UC3, cv::Scalar(value, 255 - value, value / 2));
  cv::imwrite(path.string(), image);
}

}  // namespace vtl::testing

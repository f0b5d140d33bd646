// Input-pipeline benchmark, per CPU core: JPEG decode + RandomResizedCrop(224) + horizontal
// flip + normalization to a float tensor, vtl (data::load_image_rgb with reduced JPEG
// decoding + data::train_transform) against torchvision's DataLoader worker path (PIL +
// transforms, bench/torchvision_loader.py), on the same JPEG files, in the same run.
//
//   loader_bench [IMAGES [PASSES]]   default 300 images (written by the Python side from
//                                    openclipart PNGs, shorter side 375-500 px), 2 passes
// Both sides use one thread. The last line says how many cores of each would feed a
// training step consuming a given number of images per second.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vtl/core/error.h"
#include "vtl/data/image.h"
#include "vtl/data/transforms.h"

namespace {

namespace fs = std::filesystem;

nlohmann::json run_python(const fs::path& folder, int make, int passes) {
  const std::string command = fmt::format(
      "OMP_NUM_THREADS=1 /usr/bin/python3 {}/torchvision_loader.py {} --make {} --passes {}",
      VTL_BENCH_DIR, folder.string(), make, passes);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  VTL_CHECK(pipe != nullptr, "cannot run {}", command);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe.get())) > 0) output.append(buffer, n);
  const auto line = output.substr(output.find('{'));
  return nlohmann::json::parse(line);
}

}  // namespace

int main(int argc, char** argv) try {
  const int images = argc > 1 ? std::atoi(argv[1]) : 300;
  const int passes = argc > 2 ? std::atoi(argv[2]) : 2;
  at::set_num_threads(1);
  const fs::path folder = fs::temp_directory_path() / "vtl_loader_bench";
  fs::remove_all(folder);
  const auto python = run_python(folder, images, passes);  // writes the JPEGs first

  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().extension() == ".jpg") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  VTL_CHECK(!paths.empty(), "{}: no JPEGs were written", folder.string());

  vtl::Preprocessing preprocessing;  // ImageNet: crop 224, mean/std
  vtl::data::AugmentOptions augment = vtl::data::AugmentOptions::none();
  augment.random_resized_crop = true;  // torchvision's RandomResizedCrop defaults
  augment.scale_min = 0.08;
  augment.horizontal_flip = true;
  vtl::data::DecodeOptions decode;
  decode.min_short_side = preprocessing.crop;  // decode large JPEGs at 1/2, 1/4, 1/8
  std::mt19937_64 rng(0);
  auto one = [&](const fs::path& path) {
    auto rgb = vtl::data::load_image_rgb(path, decode);
    return vtl::data::train_transform(rgb, preprocessing, augment, rng);
  };
  for (size_t i = 0; i < std::min<size_t>(20, paths.size()); ++i) one(paths[i]);  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (int p = 0; p < passes; ++p)
    for (const auto& path : paths) one(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double vtl_rate = double(paths.size()) * passes / seconds;
  const double python_rate = python.at("images_per_second").get<double>();

  fmt::print("{} JPEGs (shorter side 375-500 px) x {} passes, one core each\n", paths.size(),
             passes);
  fmt::print("{:<44} {:>12}\n", "pipeline", "images/s");
  fmt::print("{:<44} {:>12.1f}\n", "vtl (load_image_rgb + train_transform)", vtl_rate);
  fmt::print("{:<44} {:>12.1f}\n", "torchvision (PIL + transforms)", python_rate);
  fmt::print("ratio vtl / torchvision: {:.2f}\n", vtl_rate / python_rate);
  for (double gpu_rate : {4682.0, 6841.0})
    fmt::print("cores to feed {:.0f} images/s: vtl {:.1f}, torchvision {:.1f}\n", gpu_rate,
               gpu_rate / vtl_rate, gpu_rate / python_rate);
  fs::remove_all(folder);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

// Feature-cache benchmark: seconds per epoch of `--strategy features` training with the
// pooled features cached (computed once, the head trains from them) against the same run
// recomputing the frozen base every epoch. Both runs are measured here, in this process.
//
//   feature_cache_bench [MODEL [IMG_SIZE [IMAGES_PER_CLASS [EPOCHS]]]]
//   defaults: resnet50 128 40 4, five openclipart categories (Debian's openclipart-png)
// Epoch 1 of the cached run includes computing the cache; the speed-up is over epochs 2+.

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/data/sample_tree.h"
#include "vtl/train/run.h"

namespace {

namespace fs = std::filesystem;
using vtl::train::RunResult;

RunResult train_once(const fs::path& data, const fs::path& out, const std::string& model,
                     int img_size, int64_t epochs, const std::string& cache) {
  vtl::train::RunOptions options;
  options.data = data;
  options.model = model;
  options.img_size = img_size;
  options.augment = false;
  options.progress = false;
  options.report = false;
  options.config.strategy = vtl::train::Strategy::features;
  options.config.epochs = epochs;
  options.config.cache_features = cache;
  options.config.seed = 0;
  options.out = out;
  fs::remove_all(out);
  return vtl::train::run_training(options, false, [](const std::string&) {});
}

/// Mean seconds of epochs 2..N.
double steady_epoch_seconds(const RunResult& result) {
  double total = 0;
  for (size_t i = 1; i < result.history.size(); ++i) total += result.history[i].seconds;
  return total / double(std::max<size_t>(1, result.history.size() - 1));
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string model = argc > 1 ? argv[1] : "resnet50";
  const int img_size = argc > 2 ? std::atoi(argv[2]) : 128;
  const int64_t per_class = argc > 3 ? std::atoll(argv[3]) : 40;
  const int64_t epochs = argc > 4 ? std::atoll(argv[4]) : 4;
  VTL_CHECK(epochs >= 2, "need at least 2 epochs to measure epochs after the first");

  const fs::path work = fs::temp_directory_path() / "vtl_feature_cache_bench";
  const int64_t images = vtl::data::link_sample_tree(
      "/usr/share/openclipart/png", {"animals", "buildings", "food", "plants", "transportation"},
      per_class, 0, work / "data");
  fmt::print("{} at {} px, {} images (80% train), {} epochs, features strategy, no augmentation\n",
             model, img_size, images, epochs);

  const auto uncached =
      train_once(work / "data", work / "uncached", model, img_size, epochs, "off");
  const auto cached = train_once(work / "data", work / "cached", model, img_size, epochs, "on");
  fmt::print("{:<10} {:>14} {:>22} {:>10}\n", "run", "epoch 1 (s)", "epochs 2+ (s/epoch)",
             "val acc");
  auto row = [](const char* name, const RunResult& r) {
    fmt::print("{:<10} {:>14.2f} {:>22.3f} {:>10.4f}\n", name, r.history.front().seconds,
               steady_epoch_seconds(r), r.validation->top1);
  };
  row("uncached", uncached);
  row("cached", cached);
  fmt::print("speed-up per epoch after the first: {:.1f}x\n",
             steady_epoch_seconds(uncached) / steady_epoch_seconds(cached));
  fs::remove_all(work);
  return 0;
} catch (const vtl::Error& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

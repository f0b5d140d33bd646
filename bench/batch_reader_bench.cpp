// Inference over image files: decoding on the consumer's thread, batch after batch (how
// vtl predict, extract and index read images before data::BatchReader), against
// data::BatchReader decoding ahead on worker threads while the model computes. Same files,
// same model, same run; prints images/s of each and the ratio.
//
//   batch_reader_bench [FOLDER [IMAGES [MODEL [BATCH]]]]
//     default: /usr/share/openclipart/png/food, its first 160 images (sorted), resnet18
//     (random weights, BatchNorm folded, eval transform at 224 px), batch 16
// Each way runs twice, alternating; the faster of the two is reported.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "vtl/core/error.h"
#include "vtl/core/preprocessing.h"
#include "vtl/core/runtime.h"
#include "vtl/data/batch_reader.h"
#include "vtl/data/dataset.h"
#include "vtl/data/image.h"
#include "vtl/data/preprocess.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/registry.h"

namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) try {
  const fs::path folder = argc > 1 ? argv[1] : "/usr/share/openclipart/png/food";
  const size_t count = argc > 2 ? size_t(std::atoi(argv[2])) : 160;
  const std::string model_name = argc > 3 ? argv[3] : "resnet18";
  const size_t batch_size = argc > 4 ? size_t(std::atoi(argv[4])) : 16;
  vtl::configure_threads();  // one per hardware thread, as the vtl command does

  auto paths = vtl::data::list_images(folder);
  if (paths.size() > count) paths.resize(count);
  VTL_CHECK(!paths.empty(), "{}: no images", folder.string());

  auto model = vtl::models::create_model(model_name);
  model->eval();
  vtl::models::fold_batch_norms(*model);
  torch::NoGradGuard no_grad;
  vtl::Preprocessing preprocessing;  // ImageNet: resize 256, crop 224
  vtl::data::DecodeOptions decode;
  decode.min_short_side = preprocessing.resize;
  auto read = [&](const fs::path& path) {
    return vtl::data::eval_transform(vtl::data::load_image_rgb(path, decode), preprocessing);
  };
  int64_t checksum_rows = 0;

  auto sequential = [&] {
    for (size_t start = 0; start < paths.size(); start += batch_size) {
      std::vector<torch::Tensor> batch;
      for (size_t i = start; i < std::min(paths.size(), start + batch_size); ++i) {
        try {
          batch.push_back(read(paths[i]));
        } catch (const vtl::Error&) {
        }
      }
      if (!batch.empty()) checksum_rows += model->forward(torch::stack(batch)).size(0);
    }
  };
  auto ahead = [&] {
    vtl::data::BatchReader reader(paths, batch_size, read);
    while (auto batch = reader.next())
      if (batch->readable() > 0) checksum_rows += model->forward(batch->stacked()).size(0);
  };

  model->forward(torch::zeros({2, 3, 224, 224}));  // warm up
  double best_sequential = 1e30, best_ahead = 1e30;
  for (int round = 0; round < 2; ++round) {
    auto start = std::chrono::steady_clock::now();
    sequential();
    best_sequential = std::min(best_sequential, seconds_since(start));
    start = std::chrono::steady_clock::now();
    ahead();
    best_ahead = std::min(best_ahead, seconds_since(start));
  }
  const double n = double(paths.size());
  std::cout << fmt::format(
      "{} images from {}, {} at 224 px, batch {}, {} intra-op threads, {} reader threads\n",
      paths.size(), folder.string(), model_name, batch_size, at::get_num_threads(),
      vtl::data::BatchReader::default_workers());
  std::cout << fmt::format("decode on the consumer thread  {:8.1f} images/s  ({:.2f} s)\n",
                           n / best_sequential, best_sequential);
  std::cout << fmt::format("BatchReader (decode ahead)     {:8.1f} images/s  ({:.2f} s)\n",
                           n / best_ahead, best_ahead);
  std::cout << fmt::format("ratio BatchReader / consumer thread: {:.2f}  (rows {})\n",
                           best_sequential / best_ahead, checksum_rows);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "batch_reader_bench: " << e.what() << "\n";
  return 1;
}

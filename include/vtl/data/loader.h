#pragma once
// Decoded-image store and a multi-threaded batch loader.
//
// ImageStore decodes every image of a dataset once (in parallel), shrinks it so that its
// shorter side is at most `max_short_side` (the transforms never need more), keeps it in
// memory while a budget allows, and drops unreadable files from the dataset (listed as
// skipped, never a crash). Loader workers then crop, augment and normalize ahead of the
// training step into a bounded prefetch queue.
//
// Determinism: the sample order of epoch e is a shuffle seeded with (seed, e); the
// augmentation of a sample is drawn from an rng seeded with (seed, e, sample index), so a
// batch's content depends on neither the worker count nor thread timing.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include "vtl/core/preprocessing.h"
#include "vtl/data/dataset.h"
#include "vtl/data/image.h"
#include "vtl/data/transforms.h"

namespace vtl::data {

class ImageStore {
 public:
  /// `max_short_side`: an image with a longer shorter side is shrunk (area interpolation) to
  /// shorter_side_resized(size, max_short_side), the size eval_transform resizes to;
  /// `memory_budget` bytes of decoded images are kept, the rest is decoded again when used.
  ImageStore(DecodeOptions decode, int max_short_side, int64_t memory_budget = 3LL << 30);

  /// Decodes every sample of `dataset` with `workers` threads; files that fail are removed
  /// from dataset.samples and appended to dataset.skipped with the reason. `progress`
  /// (optional) is called from the calling thread as (done, total).
  void prepare(Dataset& dataset, int workers,
               const std::function<void(size_t, size_t)>& progress = {});

  /// The (shrunk) RGB image of `path`: from memory if kept, else decoded now. Thread-safe
  /// once prepare() has returned. Throws vtl::Error for an unreadable file.
  cv::Mat get(const std::filesystem::path& path) const;

  int64_t bytes_kept() const { return bytes_kept_; }
  size_t images_kept() const { return images_.size(); }

 private:
  cv::Mat decode(const std::filesystem::path& path) const;

  DecodeOptions decode_;
  int max_short_side_;
  int64_t memory_budget_;
  int64_t bytes_kept_ = 0;
  std::unordered_map<std::string, cv::Mat> images_;
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  bool drop_last = false;
  /// Worker threads decoding and transforming ahead of the consumer (>= 1).
  int workers = 2;
  /// Batches prepared ahead of the consumer at most.
  int prefetch = 4;
  uint64_t seed = 0;
  /// false: eval transform; true: train_transform with `augment`.
  bool train = false;
  AugmentOptions augment;
  Preprocessing preprocessing;
  /// Data parallelism: this process is rank `rank` of `world` and takes the positions
  /// rank, rank + world, rank + 2 world, ... of every batch of `batch_size` (the global
  /// batch, in the order above), so the ranks' shares of an epoch are disjoint, their union
  /// is the single-process batch, and every rank has the same num_batches(); a share can be
  /// empty (a batch of 0 images) in a last batch smaller than `world`.
  int rank = 0;
  int world = 1;
  /// Batches in page-locked host memory, so `.to(cuda, /*non_blocking=*/true)` copies
  /// asynchronously (PyTorch's DataLoader(pin_memory=True)). Needs a LibTorch with CUDA.
  bool pin_memory = false;
};

struct Batch {
  torch::Tensor images;         ///< float32 [N,3,crop,crop], normalized (N may be 0: world > 1)
  torch::Tensor labels;         ///< int64 [N]
  std::vector<size_t> indices;  ///< positions in the dataset's samples
};

class Loader {
 public:
  Loader(const Dataset& dataset, std::shared_ptr<const ImageStore> store, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  size_t num_batches() const;
  size_t num_samples() const { return dataset_.samples.size(); }
  const LoaderOptions& options() const { return options_; }

  /// Starts producing the batches of epoch `epoch` (stops any epoch in progress).
  void start_epoch(int64_t epoch);
  /// The next batch of the current epoch in order, or nullopt at its end. Rethrows a
  /// worker's exception.
  std::optional<Batch> next();

 private:
  void stop();
  void work(int worker);
  Batch make_batch(size_t batch) const;

  Dataset dataset_;
  std::shared_ptr<const ImageStore> store_;
  LoaderOptions options_;
  int64_t epoch_ = 0;
  std::vector<size_t> order_;
  size_t num_batches_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<size_t, Batch> ready_;
  size_t next_batch_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

/// 64-bit mix of values (splitmix64), for seeding per-epoch and per-sample rngs.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

}  // namespace vtl::data

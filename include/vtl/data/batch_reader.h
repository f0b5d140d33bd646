#pragma once
// Reading a list of image files in batches, in order, with the decoding done by worker
// threads ahead of the consumer: the model computes on batch k while batch k+1 is read.
// A file that cannot be read is reported in its batch, never a failure of the whole run.

#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

namespace vtl::data {

/// Images [first, first + size()) of a BatchReader's list.
struct ImageBatch {
  size_t first = 0;
  /// Per image: what the reader's function returned (e.g. float32 [3, H, W]), undefined
  /// where the file could not be read.
  std::vector<torch::Tensor> images;
  /// Per image: "" or why the file could not be read (the vtl::Error message, which names
  /// the file).
  std::vector<std::string> errors;

  size_t size() const { return images.size(); }
  size_t readable() const;
  /// The readable images stacked in order: [readable(), ...]; undefined when none is.
  torch::Tensor stacked() const;
};

class BatchReader {
 public:
  /// Reads one file; throws vtl::Error when it cannot (that becomes the image's error).
  /// Called from several threads at once.
  using ReadImage = std::function<torch::Tensor(const std::filesystem::path&)>;

  /// Starts `workers` threads (at least 1) that read `paths` in order with `read`, at most
  /// `ahead` (at least 1) batches of `batch_size` beyond the images handed out.
  BatchReader(std::vector<std::filesystem::path> paths, size_t batch_size, ReadImage read,
              int workers = default_workers(), int ahead = 2);
  /// Stops the workers (an image being read is finished first) and joins them.
  ~BatchReader();
  BatchReader(const BatchReader&) = delete;
  BatchReader& operator=(const BatchReader&) = delete;

  /// The next batch in order, waiting for its files; nullopt after the last. An exception
  /// other than vtl::Error thrown by `read` is rethrown here, with its batch.
  std::optional<ImageBatch> next();

  size_t size() const { return count_; }

  /// Reading threads for this machine: its hardware threads, between 1 and 8.
  static int default_workers();

 private:
  struct Shared;
  void work();

  size_t count_;
  size_t batch_size_;
  size_t handed_out_ = 0;  ///< images handed out by next()
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace vtl::data

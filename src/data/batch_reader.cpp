#include "vtl/data/batch_reader.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "vtl/core/error.h"

namespace vtl::data {

size_t ImageBatch::readable() const {
  return size_t(std::count_if(images.begin(), images.end(),
                              [](const torch::Tensor& image) { return image.defined(); }));
}

torch::Tensor ImageBatch::stacked() const {
  std::vector<torch::Tensor> kept;
  for (const auto& image : images)
    if (image.defined()) kept.push_back(image);
  return kept.empty() ? torch::Tensor() : torch::stack(kept);
}

/// Guarded by `mutex`: every field but `paths` and `read`, which are immutable.
struct BatchReader::Shared {
  std::vector<std::filesystem::path> paths;
  ReadImage read;
  size_t window = 0;  ///< images a worker may read beyond those handed out

  std::mutex mutex;
  std::condition_variable changed;
  size_t claimed = 0;     ///< the next image a worker takes
  size_t handed_out = 0;  ///< images before this index belong to the consumer
  bool stopping = false;
  std::vector<torch::Tensor> images;
  std::vector<std::string> errors;
  std::vector<std::exception_ptr> failures;
  std::vector<char> done;
};

BatchReader::BatchReader(std::vector<std::filesystem::path> paths, size_t batch_size,
                         ReadImage read, int workers, int ahead)
    : count_(paths.size()), batch_size_(batch_size), shared_(std::make_shared<Shared>()) {
  VTL_CHECK(batch_size > 0, "batch size must be positive");
  VTL_CHECK(read, "BatchReader: no read function");
  shared_->paths = std::move(paths);
  shared_->read = std::move(read);
  shared_->window = batch_size * size_t(std::max(1, ahead));
  shared_->images.resize(count_);
  shared_->errors.resize(count_);
  shared_->failures.resize(count_);
  shared_->done.assign(count_, 0);
  const size_t threads =
      std::min<size_t>(size_t(std::max(1, workers)), std::max<size_t>(1, count_));
  for (size_t t = 0; t < threads && count_ > 0; ++t) threads_.emplace_back([this] { work(); });
}

BatchReader::~BatchReader() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stopping = true;
  }
  shared_->changed.notify_all();
  for (auto& thread : threads_) thread.join();
}

int BatchReader::default_workers() {
  return int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8));
}

void BatchReader::work() {
  Shared& s = *shared_;
  for (;;) {
    size_t index;
    {
      std::unique_lock<std::mutex> lock(s.mutex);
      s.changed.wait(lock, [&] {
        return s.stopping || s.claimed >= count_ || s.claimed < s.handed_out + s.window;
      });
      if (s.stopping || s.claimed >= count_) return;
      index = s.claimed++;
    }
    torch::Tensor image;
    std::string error;
    std::exception_ptr failure;
    try {
      image = s.read(s.paths[index]);
    } catch (const Error& e) {
      error = e.what();
      if (error.empty()) error = s.paths[index].string() + ": cannot be read";
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.images[index] = std::move(image);
      s.errors[index] = std::move(error);
      s.failures[index] = failure;
      s.done[index] = 1;
    }
    s.changed.notify_all();
  }
}

std::optional<ImageBatch> BatchReader::next() {
  if (handed_out_ >= count_) return std::nullopt;
  Shared& s = *shared_;
  const size_t first = handed_out_, end = std::min(count_, first + batch_size_);
  ImageBatch batch;
  batch.first = first;
  std::exception_ptr failure;
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.changed.wait(lock, [&] {
      return std::all_of(s.done.begin() + long(first), s.done.begin() + long(end),
                         [](char d) { return d != 0; });
    });
    for (size_t i = first; i < end; ++i) {
      batch.images.push_back(std::move(s.images[i]));
      batch.errors.push_back(std::move(s.errors[i]));
      if (!failure && s.failures[i]) failure = s.failures[i];
      s.failures[i] = nullptr;
    }
    s.handed_out = end;
  }
  s.changed.notify_all();
  handed_out_ = end;
  if (failure) std::rethrow_exception(failure);
  return batch;
}

}  // namespace vtl::data

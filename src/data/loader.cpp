#include "vtl/data/loader.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <opencv2/imgproc.hpp>

#include "vtl/core/error.h"
#include "vtl/core/stop_signals.h"
#include "vtl/data/preprocess.h"

namespace vtl::data {
namespace fs = std::filesystem;

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  auto splitmix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(a) ^ b) ^ c);
}

// ---------------------------------------------------------------- ImageStore

ImageStore::ImageStore(DecodeOptions decode, int max_short_side, int64_t memory_budget)
    : decode_(decode), max_short_side_(max_short_side), memory_budget_(memory_budget) {
  VTL_CHECK(max_short_side > 0, "image store: max_short_side must be positive");
  if (decode_.min_short_side <= 0) decode_.min_short_side = max_short_side;
}

cv::Mat ImageStore::decode(const fs::path& path) const {
  cv::Mat rgb = load_image_rgb(path, decode_);
  if (std::min(rgb.rows, rgb.cols) > max_short_side_) {
    // The size eval_transform resizes to, so that evaluation's centre crop of the stored
    // image is the one `vtl predict` cuts from the file.
    cv::Mat small;
    cv::resize(rgb, small, shorter_side_resized(rgb.size(), max_short_side_), 0, 0, cv::INTER_AREA);
    return small;
  }
  return rgb;
}

void ImageStore::prepare(Dataset& dataset, int workers,
                         const std::function<void(size_t, size_t)>& progress) {
  const size_t total = dataset.samples.size();
  std::vector<cv::Mat> decoded(total);
  std::vector<std::string> errors(total);
  std::atomic<size_t> next{0}, done{0};
  auto work = [&] {
    for (size_t i = next++; i < total && !stop_requested(); i = next++) {
      try {
        decoded[i] = decode(dataset.samples[i].path);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
      ++done;
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < std::max(1, workers); ++w) threads.emplace_back(work);
  if (progress) {
    // Shown every 200 ms; the end is seen within 10 ms, so the final rate is the real one.
    auto next_show = std::chrono::steady_clock::now();
    while (done < total && !stop_requested()) {
      if (std::chrono::steady_clock::now() >= next_show) {
        progress(done, total);
        next_show += std::chrono::milliseconds(200);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!stop_requested()) progress(total, total);
  }
  for (auto& thread : threads) thread.join();
  if (stop_requested())
    throw Interrupted(
        fmt::format("stopped while reading the images ({} of {} read)", done.load(), total),
        stop_signal());

  const auto counts_before = dataset.class_counts();
  std::vector<Sample> kept;
  for (size_t i = 0; i < total; ++i) {
    if (!errors[i].empty()) {
      dataset.skipped.push_back(SkippedFile::from_error(dataset.samples[i].path, errors[i]));
      continue;
    }
    const std::string key = dataset.samples[i].path.string();
    const int64_t bytes = int64_t(decoded[i].total() * decoded[i].elemSize());
    if (!images_.count(key) && bytes_kept_ + bytes <= memory_budget_) {
      images_.emplace(key, decoded[i]);
      bytes_kept_ += bytes;
    }
    kept.push_back(dataset.samples[i]);
  }
  dataset.samples = std::move(kept);
  const auto counts = dataset.class_counts();
  for (size_t c = 0; c < counts.size(); ++c) {
    VTL_CHECK(counts_before[c] == 0 || counts[c] > 0,
              "class '{}' has no readable images (all {} skipped; the first: {})",
              dataset.classes[c], counts_before[c],
              dataset.skipped.empty() ? std::string() : dataset.skipped.back().reason);
  }
}

cv::Mat ImageStore::get(const fs::path& path) const {
  auto it = images_.find(path.string());
  if (it != images_.end()) return it->second;
  return decode(path);
}

// ---------------------------------------------------------------- Loader

Loader::Loader(const Dataset& dataset, std::shared_ptr<const ImageStore> store,
               LoaderOptions options)
    : dataset_(dataset), store_(std::move(store)), options_(std::move(options)) {
  VTL_CHECK(options_.batch_size > 0, "batch size must be positive (got {})", options_.batch_size);
  VTL_CHECK(store_, "loader: no image store");
  VTL_CHECK(options_.world >= 1 && options_.rank >= 0 && options_.rank < options_.world,
            "loader: rank {} of {} is not a rank", options_.rank, options_.world);
  options_.workers = std::max(1, options_.workers);
  options_.prefetch = std::max(1, options_.prefetch);
  const size_t n = dataset_.samples.size();
  const size_t b = size_t(options_.batch_size);
  num_batches_ = options_.drop_last ? n / b : (n + b - 1) / b;
}

Loader::~Loader() { stop(); }

size_t Loader::num_batches() const { return num_batches_; }

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = false;
  ready_.clear();
  error_ = nullptr;
}

void Loader::start_epoch(int64_t epoch) {
  stop();
  epoch_ = epoch;
  order_.resize(dataset_.samples.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  if (options_.shuffle) {
    std::mt19937_64 rng(mix_seed(options_.seed, uint64_t(epoch), 0x5EED));
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  next_batch_ = 0;
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this, w] { work(w); });
}

Batch Loader::make_batch(size_t batch) const {
  const size_t begin = batch * size_t(options_.batch_size);
  const size_t end = std::min(order_.size(), begin + size_t(options_.batch_size));
  Batch out;
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (size_t k = begin + size_t(options_.rank); k < end; k += size_t(options_.world)) {
    const size_t index = order_[k];
    const auto& sample = dataset_.samples[index];
    cv::Mat rgb = store_->get(sample.path);
    if (options_.train) {
      std::mt19937_64 rng(mix_seed(options_.seed, uint64_t(epoch_), index + 1));
      images.push_back(train_transform(rgb, options_.preprocessing, options_.augment, rng));
    } else {
      images.push_back(eval_transform(rgb, options_.preprocessing));
    }
    labels.push_back(sample.label);
    out.indices.push_back(index);
  }
  if (images.empty()) {  // this rank's share of a small last batch
    const int64_t crop = options_.preprocessing.crop;
    out.images = torch::empty({0, 3, crop, crop});
    out.labels = torch::empty({0}, torch::kInt64);
    return out;
  }
  if (options_.pin_memory) {  // stacked straight into page-locked memory
    const auto& first = images.front();
    out.images = torch::empty({int64_t(images.size()), first.size(0), first.size(1), first.size(2)},
                              torch::TensorOptions().pinned_memory(true));
    torch::stack_out(out.images, images);
    out.labels = torch::tensor(labels, torch::kInt64).pin_memory();
  } else {
    out.images = torch::stack(images);
    out.labels = torch::tensor(labels, torch::kInt64);
  }
  return out;
}

void Loader::work(int worker) {
  // Transforms are small tensor ops; keep them off the intra-op pool the model uses.
  for (size_t batch = size_t(worker); batch < num_batches_; batch += size_t(options_.workers)) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock,
                    [&] { return stopping_ || batch < next_batch_ + size_t(options_.prefetch); });
      if (stopping_) return;
    }
    try {
      Batch made = make_batch(batch);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(batch, std::move(made));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    changed_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_batch_ >= num_batches_) return std::nullopt;
  changed_.wait(lock, [&] { return error_ || ready_.count(next_batch_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto node = ready_.extract(next_batch_);
  ++next_batch_;
  lock.unlock();
  changed_.notify_all();
  return std::move(node.mapped());
}

}  // namespace vtl::data

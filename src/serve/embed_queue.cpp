#include "embed_queue.h"

#include <algorithm>
#include <exception>
#include <vector>

#include "vtl/core/error.h"

namespace vtl::serve {

struct EmbedQueue::Request {
  torch::Tensor image;   ///< [3, H, W]
  torch::Tensor vector;  ///< [dim], set by the model thread
  std::exception_ptr error;
  bool done = false;
  std::condition_variable finished;
};

EmbedQueue::EmbedQueue(embed::FeatureExtractor& extractor, int64_t max_batch)
    : extractor_(extractor), max_batch_(std::max<int64_t>(1, max_batch)) {
  worker_ = std::thread([this] { run(); });
}

EmbedQueue::~EmbedQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  waiting_.notify_all();
  worker_.join();
}

torch::Tensor EmbedQueue::embed(torch::Tensor image) {
  VTL_CHECK(image.dim() == 3, "EmbedQueue::embed expects one [3, H, W] image (got {} dims)",
            image.dim());
  Request request;
  request.image = std::move(image);
  std::unique_lock<std::mutex> lock(mutex_);
  VTL_CHECK(!stopping_, "the server is shutting down");
  queue_.push_back(&request);
  waiting_.notify_one();
  request.finished.wait(lock, [&] { return request.done; });
  if (request.error) std::rethrow_exception(request.error);
  return request.vector;
}

void EmbedQueue::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    waiting_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      for (auto* request : queue_) {
        request->error = std::make_exception_ptr(Error("the server is shutting down"));
        request->done = true;
        request->finished.notify_one();
      }
      queue_.clear();
      return;
    }
    // The oldest requests, as long as their images have the first one's size.
    std::vector<Request*> batch;
    while (!queue_.empty() && int64_t(batch.size()) < max_batch_ &&
           (batch.empty() || queue_.front()->image.sizes() == batch.front()->image.sizes())) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    std::vector<torch::Tensor> images;
    for (auto* request : batch) images.push_back(request->image);
    torch::Tensor vectors;
    std::exception_ptr error;
    try {
      vectors = extractor_.embed(torch::stack(images));
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    ++passes_;
    images_ += int64_t(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (error)
        batch[i]->error = error;
      else
        batch[i]->vector = vectors[int64_t(i)];
      batch[i]->done = true;
      batch[i]->finished.notify_one();
    }
  }
}

int64_t EmbedQueue::passes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return passes_;
}

int64_t EmbedQueue::images() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return images_;
}

}  // namespace vtl::serve

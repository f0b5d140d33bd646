#pragma once
// One model thread for many request threads: the server's worker threads hand in
// preprocessed images and wait; the model thread embeds whatever is waiting as one batch,
// first come first served. No request can be overtaken indefinitely (a plain mutex gives
// no such promise under CPU contention), and concurrent requests share forward passes.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include <torch/torch.h>

#include "vtl/embed/extractor.h"

namespace vtl::serve {

class EmbedQueue {
 public:
  /// `extractor` is used by the model thread only and must outlive the queue.
  /// `max_batch`: at most this many images per forward pass.
  explicit EmbedQueue(embed::FeatureExtractor& extractor, int64_t max_batch = 16);
  /// Finishes the batch in progress; requests still waiting get a vtl::Error.
  ~EmbedQueue();
  EmbedQueue(const EmbedQueue&) = delete;
  EmbedQueue& operator=(const EmbedQueue&) = delete;

  /// Preprocessed float32 [3, H, W] -> float32 [dim]. Blocks until the model thread has
  /// embedded it; an error of that forward pass is rethrown here.
  torch::Tensor embed(torch::Tensor image);

  /// Forward passes run so far, and images embedded by them (mean batch = images/passes).
  int64_t passes() const;
  int64_t images() const;

 private:
  struct Request;
  void run();

  embed::FeatureExtractor& extractor_;
  const int64_t max_batch_;
  mutable std::mutex mutex_;
  std::condition_variable waiting_;  ///< signalled when a request arrives or on shutdown
  std::deque<Request*> queue_;       ///< not owned: each lives on its caller's stack
  bool stopping_ = false;
  int64_t passes_ = 0, images_ = 0;
  std::thread worker_;
};

}  // namespace vtl::serve

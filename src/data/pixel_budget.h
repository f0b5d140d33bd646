#pragma once
// A shared allowance of pixels for work whose memory grows with an image's size: decoding
// holds about 8 bytes per pixel at its peak (measured: 1.48 GB of resident memory for one
// 10562x16000 openclipart PNG), so reader threads decoding several huge images at once
// would multiply that. Holders take their image's pixel count and wait while the
// allowance is spent; an image larger than the whole allowance waits to run alone.

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace vtl::data {

class PixelBudget {
 public:
  /// `capacity` pixels in all (> 0).
  explicit PixelBudget(int64_t capacity);

  /// Holds min(pixels, capacity) of the budget until destroyed; pixels <= 0 hold nothing.
  class Lease {
   public:
    Lease(PixelBudget& budget, int64_t pixels);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    PixelBudget& budget_;
    int64_t held_ = 0;
  };

  int64_t capacity() const;
  void set_capacity(int64_t capacity);
  /// Pixels held now by all leases.
  int64_t in_use() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable released_;
  int64_t capacity_;
  int64_t in_use_ = 0;
};

/// The process-wide budget of decode_image_rgb: 256 million pixels unless
/// set_decode_pixel_budget (vtl/data/image.h) changed it.
PixelBudget& decode_pixel_budget();

}  // namespace vtl::data

#include "pixel_budget.h"

#include <algorithm>

#include "vtl/core/error.h"

namespace vtl::data {

PixelBudget::PixelBudget(int64_t capacity) : capacity_(capacity) {
  VTL_CHECK(capacity > 0, "a pixel budget must be positive (got {})", capacity);
}

PixelBudget::Lease::Lease(PixelBudget& budget, int64_t pixels) : budget_(budget) {
  if (pixels <= 0) return;
  std::unique_lock<std::mutex> lock(budget_.mutex_);
  held_ = std::min(pixels, budget_.capacity_);
  budget_.released_.wait(
      lock, [&] { return budget_.in_use_ == 0 || budget_.in_use_ + held_ <= budget_.capacity_; });
  budget_.in_use_ += held_;
}

PixelBudget::Lease::~Lease() {
  if (held_ == 0) return;
  {
    std::lock_guard<std::mutex> lock(budget_.mutex_);
    budget_.in_use_ -= held_;
  }
  budget_.released_.notify_all();
}

int64_t PixelBudget::capacity() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return capacity_;
}

void PixelBudget::set_capacity(int64_t capacity) {
  VTL_CHECK(capacity > 0, "a pixel budget must be positive (got {})", capacity);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    capacity_ = capacity;
  }
  released_.notify_all();
}

int64_t PixelBudget::in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

PixelBudget& decode_pixel_budget() {
  static PixelBudget budget(256000000);
  return budget;
}

}  // namespace vtl::data

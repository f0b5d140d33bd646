// PixelBudget and its use by image decoding: concurrent decodes of huge images share one
// allowance, so reader threads do not multiply their memory.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "data/pixel_budget.h"
#include "temp_dir.h"
#include "vtl/data/image.h"

namespace vtl::data {
namespace {

using namespace std::chrono_literals;

/// Waits up to 5 s for `condition`.
template <typename Condition>
bool eventually(Condition condition) {
  for (int i = 0; i < 500 && !condition(); ++i) std::this_thread::sleep_for(10ms);
  return condition();
}

TEST(PixelBudget, LeasesShareTheCapacityAndAnOversizedOneRunsAlone) {
  PixelBudget budget(100);
  auto first = std::make_unique<PixelBudget::Lease>(budget, 60);
  { const PixelBudget::Lease small(budget, 40); }  // fits beside the first
  EXPECT_EQ(budget.in_use(), 60);

  std::atomic<bool> second_held{false}, second_release{false};
  std::thread second([&] {
    const PixelBudget::Lease lease(budget, 60);
    second_held = true;
    while (!second_release) std::this_thread::sleep_for(1ms);
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(second_held) << "60 + 60 > 100: the second lease must wait";
  first.reset();
  ASSERT_TRUE(eventually([&] { return second_held.load(); }));

  std::atomic<bool> huge_held{false};
  std::thread huge([&] {
    const PixelBudget::Lease lease(budget, 1000);  // more than the capacity: alone
    huge_held = true;
    EXPECT_EQ(budget.in_use(), 100);
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(huge_held);
  second_release = true;
  second.join();
  huge.join();
  EXPECT_TRUE(huge_held);
  EXPECT_EQ(budget.in_use(), 0);
  { const PixelBudget::Lease nothing(budget, 0); }
  EXPECT_EQ(budget.in_use(), 0);
}

int64_t peak_resident_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(PixelBudget, ConcurrentDecodesOfHugeImagesDoNotMultiplyThePeakMemory) {
  testing::TempDir dir("vtl_pixel_budget");
  const auto file = dir / "huge.png";
  // Written by a child process, so that writing it does not raise this process's peak.
  const pid_t child = fork();
  if (child == 0) {
    const cv::Mat rgba(6000, 6000, CV_8UC4, cv::Scalar(10, 200, 30, 128));  // 36 megapixels
    _exit(cv::imwrite(file.string(), rgba) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  const int64_t base = peak_resident_kib();
  load_image_rgb(file);
  const int64_t one = peak_resident_kib() - base;
  ASSERT_GT(one, 100 * 1024) << "a 36-megapixel decode should take well over 100 MiB";

  set_decode_pixel_budget(40000000);  // room for one such image at a time
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) readers.emplace_back([&] { load_image_rgb(file); });
  for (auto& reader : readers) reader.join();
  set_decode_pixel_budget(256000000);
  const int64_t four = peak_resident_kib() - base;
  // One decode at a time: the peak stays that of one image (four at once would be ~4x).
  EXPECT_LT(four, one * 3 / 2) << "peak KiB above the start: one image " << one << ", four threads "
                               << four;
}

}  // namespace
}  // namespace vtl::data

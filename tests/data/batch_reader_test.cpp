// BatchReader: batches in order whatever the worker count, unreadable files reported in
// their batch, workers bounded ahead of the consumer, other failures surfaced.

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "vtl/core/error.h"
#include "vtl/data/batch_reader.h"

namespace vtl::data {
namespace {

namespace fs = std::filesystem;

/// Paths "0".."n-1"; the read function returns a [1] tensor holding the number and throws
/// vtl::Error for the numbers in `bad`.
std::vector<fs::path> numbered(size_t n) {
  std::vector<fs::path> paths;
  for (size_t i = 0; i < n; ++i) paths.emplace_back(std::to_string(i));
  return paths;
}

BatchReader::ReadImage reader_failing_on(std::vector<int> bad) {
  return [bad](const fs::path& path) {
    const int number = std::stoi(path.string());
    // Uneven reading times, so workers finish out of order.
    std::this_thread::sleep_for(std::chrono::microseconds((number * 7919) % 3000));
    if (std::find(bad.begin(), bad.end(), number) != bad.end())
      fail("{}: not a readable image", path.string());
    return torch::full({1}, float(number));
  };
}

TEST(BatchReader, BatchesComeInOrderWithTheUnreadableFilesNamedForAnyWorkerCount) {
  for (int workers : {1, 2, 5}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    BatchReader reader(numbered(11), 4, reader_failing_on({2, 3, 10}), workers);
    std::vector<size_t> firsts, sizes;
    std::vector<float> values;
    std::vector<std::string> errors;
    while (auto batch = reader.next()) {
      firsts.push_back(batch->first);
      sizes.push_back(batch->size());
      ASSERT_EQ(batch->errors.size(), batch->size());
      for (size_t i = 0; i < batch->size(); ++i) {
        EXPECT_EQ(batch->images[i].defined(), batch->errors[i].empty());
        if (!batch->errors[i].empty()) errors.push_back(batch->errors[i]);
      }
      const auto stacked = batch->stacked();
      if (batch->readable() == 0) {
        EXPECT_FALSE(stacked.defined());
        continue;
      }
      ASSERT_EQ(stacked.size(0), int64_t(batch->readable()));
      for (int64_t r = 0; r < stacked.size(0); ++r) values.push_back(stacked[r][0].item<float>());
    }
    EXPECT_EQ(firsts, (std::vector<size_t>{0, 4, 8}));
    EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 3}));
    EXPECT_EQ(values, (std::vector<float>{0, 1, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(errors,
              (std::vector<std::string>{"2: not a readable image", "3: not a readable image",
                                        "10: not a readable image"}));
    EXPECT_FALSE(reader.next().has_value());
  }
}

TEST(BatchReader, WorkersStayAtMostAheadBatchesBeyondTheConsumer) {
  std::atomic<int> reads{0};
  BatchReader reader(
      numbered(40), 3,
      [&](const fs::path& path) {
        ++reads;
        return torch::full({1}, float(std::stoi(path.string())));
      },
      /*workers=*/4, /*ahead=*/2);
  // Nothing handed out yet: the workers may read the first 2 batches, no more.
  for (int wait = 0; wait < 500 && reads < 6; ++wait)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(reads.load(), 6);
  ASSERT_TRUE(reader.next().has_value());  // images 0-2 handed out: window is 3-8
  for (int wait = 0; wait < 500 && reads < 9; ++wait)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(reads.load(), 9);
}

TEST(BatchReader, AFailureOtherThanAnUnreadableFileIsRethrownWithItsBatch) {
  BatchReader reader(numbered(6), 2, [](const fs::path& path) -> torch::Tensor {
    if (path == "3") throw std::runtime_error("out of memory");
    return torch::zeros({1});
  });
  EXPECT_TRUE(reader.next().has_value());
  try {
    reader.next();
    FAIL() << "expected the read function's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "out of memory");
  }
}

TEST(BatchReader, DestroyingItBeforeTheEndStopsTheWorkers) {
  std::atomic<int> reads{0};
  {
    BatchReader reader(numbered(1000), 8, [&](const fs::path&) {
      ++reads;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return torch::zeros({1});
    });
    ASSERT_TRUE(reader.next().has_value());
  }
  EXPECT_LE(reads.load(), 8 * 3);
}

TEST(BatchReader, AnEmptyListHasNoBatches) {
  BatchReader reader({}, 4, [](const fs::path&) { return torch::zeros({1}); });
  EXPECT_FALSE(reader.next().has_value());
}

}  // namespace
}  // namespace vtl::data

#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "vtl/core/progress_line.h"

namespace vtl {
namespace {

TEST(ProgressLine, ATerminalGetsOneLineRewrittenInPlace) {
  std::ostringstream out;
  {
    ProgressLine progress(out, /*terminal=*/true);
    progress.show("work: 1/3");
    progress.show("work: 2/3");
  }  // ended by the destructor
  EXPECT_EQ(out.str(), "\r\033[Kwork: 1/3\r\033[Kwork: 2/3\n");
  out.str("");
  {
    ProgressLine progress(out, true);
    progress.show("work: 3/3", /*last=*/true);
  }
  EXPECT_EQ(out.str(), "\r\033[Kwork: 3/3\n");
}

TEST(ProgressLine, ALogGetsAWholeLinePerIntervalAndTheLast) {
  std::ostringstream out;
  ProgressLine progress(out, /*terminal=*/false, std::chrono::milliseconds(200));
  progress.show("work: 1/5");  // within the first interval: not shown
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  progress.show("work: 2/5");
  progress.show("work: 3/5");  // within the interval: not
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  progress.show("work: 4/5");
  progress.clear();  // nothing to clear in a log
  progress.show("work: 5/5", /*last=*/true);
  EXPECT_EQ(out.str(), "work: 2/5\nwork: 4/5\nwork: 5/5\n");
}

TEST(ProgressLine, ClearRemovesTheLineFromATerminal) {
  std::ostringstream out;
  {
    ProgressLine progress(out, /*terminal=*/true);
    progress.show("epoch 1 [==  ]");
    progress.clear();
  }  // nothing left open
  EXPECT_EQ(out.str(), "\r\033[Kepoch 1 [==  ]\r\033[K");
}

TEST(ProgressLine, CountsSayTheRateAndTheTimeLeft) {
  std::ostringstream out;
  ProgressLine progress(out, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string half = progress.counted(5, 10, "images");
  EXPECT_EQ(half.rfind("5/10 images (", 0), 0u) << half;
  EXPECT_NE(half.find(" images/s, 0:00 left)"), std::string::npos) << half;  // ~0.1 s left
  const std::string done = progress.counted(10, 10, "images");
  EXPECT_EQ(done.find("left"), std::string::npos) << done;
  EXPECT_EQ(progress.counted(0, 10, "images").find("left"), std::string::npos);
}

}  // namespace
}  // namespace vtl

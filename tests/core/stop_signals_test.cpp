// StopSignals: a signal becomes a stop request (and a callback), the previous handlers
// come back, and without a live StopSignals nothing is requested.

#include <signal.h>

#include <csignal>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "vtl/core/stop_signals.h"

namespace vtl {
namespace {

sighandler_t current_handler(int signal) {
  struct sigaction now {};
  ::sigaction(signal, nullptr, &now);
  return now.sa_handler;
}

TEST(StopSignals, ASignalIsAStopRequestAndTheCallbackRunsOnce) {
  const auto before_int = current_handler(SIGINT), before_term = current_handler(SIGTERM);
  EXPECT_FALSE(stop_requested());
  {
    StopSignals signals("test notice");
    EXPECT_NE(current_handler(SIGINT), before_int);
    std::atomic<int> calls{0};
    signals.on_stop([&] { ++calls; });
    EXPECT_FALSE(stop_requested());
    ::testing::internal::CaptureStderr();
    std::raise(SIGTERM);
    const std::string notice = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(notice, "vtl: terminated: test notice\n");
    EXPECT_TRUE(stop_requested());
    EXPECT_EQ(stop_signal(), SIGTERM);
    for (int waited = 0; waited < 5000 && calls == 0; ++waited)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(calls, 1);
    EXPECT_THROW(StopSignals("a second one"), Error);
    signals.finish();
    EXPECT_FALSE(stop_requested());
    EXPECT_EQ(current_handler(SIGINT), before_int);
    EXPECT_EQ(current_handler(SIGTERM), before_term);
  }
  // A later one starts clean, and without a callback a signal only sets the request.
  StopSignals again("again");
  ::testing::internal::CaptureStderr();
  std::raise(SIGINT);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "vtl: interrupted: again\n");
  EXPECT_EQ(stop_signal(), SIGINT);
}

TEST(StopSignals, ASecondSignalEndsTheProcessAtOnce) {
  EXPECT_EXIT(
      {
        StopSignals signals("first");
        std::raise(SIGINT);
        std::raise(SIGINT);
        std::this_thread::sleep_for(std::chrono::seconds(10));
        std::exit(0);
      },
      ::testing::ExitedWithCode(128 + SIGINT), "vtl: interrupted again: exiting now");
}

}  // namespace
}  // namespace vtl

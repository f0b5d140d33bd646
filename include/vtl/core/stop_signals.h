#pragma once
// Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, for commands
// that would otherwise lose work or drop requests when killed: `vtl train` finishes its
// step and says how to resume, `vtl serve` answers the requests in progress. A second
// signal ends the process at once. Without a live StopSignals the signals keep their usual
// effect and stop_requested() stays false, so library users see no change.

#include <functional>
#include <string>
#include <thread>

#include "vtl/core/error.h"

namespace vtl {

/// Takes SIGINT and SIGTERM while it lives (one at a time per process; the previous
/// handlers come back with finish() or destruction). At the first signal,
/// stop_requested() turns true and "vtl: interrupted: NOTICE" (or "terminated") is written
/// to stderr; at a second one the process exits at once with status 128 + signal.
class StopSignals {
 public:
  explicit StopSignals(std::string notice);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// Runs `callback` on a thread of its own at the first signal (for code that blocks, such
  /// as a server's accept loop). What it uses must live until finish().
  void on_stop(std::function<void()> callback);
  /// Ends the callback's thread (no callback runs after this returns), restores the
  /// previous handlers and clears stop_requested(). Idempotent.
  void finish();

 private:
  std::string interrupted_, terminated_;  ///< complete lines, read by the signal handler
  int pipe_[2] = {-1, -1};                ///< signal handler -> callback thread
  std::thread waiter_;
  bool installed_ = false;
};

/// True once a signal reached the live StopSignals of this process (false again after
/// its finish()).
bool stop_requested();
/// The signal that asked for the stop (SIGINT or SIGTERM; 0 when none did).
int stop_signal();

/// Thrown at a safe point after stop_requested(); the CLI prints it and exits with
/// 128 + signal(), as a shell does for a process that a signal ended.
class Interrupted : public Error {
 public:
  Interrupted(const std::string& message, int signal) : Error(message), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

}  // namespace vtl

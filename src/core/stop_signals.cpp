#include "vtl/core/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace vtl {
namespace {

// Shared with the signal handler, so plain atomics and pointers set before it is installed.
std::atomic<int> received_signal{0};
std::atomic<int> callback_pipe{-1};
const std::string* interrupted_line = nullptr;
const std::string* terminated_line = nullptr;
struct sigaction previous_int_action = {};
struct sigaction previous_term_action = {};

/// Best effort: nothing is left to do when stderr or the pipe is gone.
void write_bytes(int fd, const void* bytes, size_t size) {
  [[maybe_unused]] const auto written = ::write(fd, bytes, size);
}

/// Async-signal-safe: atomics, write(2) and _exit only.
extern "C" void on_stop_signal(int signal) {
  int expected = 0;
  if (!received_signal.compare_exchange_strong(expected, signal)) {
    static const char interrupted_again[] = "vtl: interrupted again: exiting now\n";
    static const char terminated_again[] = "vtl: terminated again: exiting now\n";
    const char* again = signal == SIGINT ? interrupted_again : terminated_again;
    const size_t length = signal == SIGINT ? sizeof interrupted_again : sizeof terminated_again;
    write_bytes(STDERR_FILENO, again, length - 1);
    ::_exit(128 + signal);
  }
  if (const std::string* line = signal == SIGINT ? interrupted_line : terminated_line)
    write_bytes(STDERR_FILENO, line->data(), line->size());
  const int fd = callback_pipe.load();
  const auto byte = static_cast<unsigned char>(signal);
  if (fd >= 0) write_bytes(fd, &byte, 1);
}

}  // namespace

StopSignals::StopSignals(std::string notice)
    : interrupted_("vtl: interrupted: " + notice + "\n"),
      terminated_("vtl: terminated: " + notice + "\n") {
  VTL_CHECK(interrupted_line == nullptr, "StopSignals: one at a time per process");
  VTL_CHECK(::pipe(pipe_) == 0, "cannot create a pipe for signal handling");
  received_signal = 0;
  interrupted_line = &interrupted_;
  terminated_line = &terminated_;
  callback_pipe = pipe_[1];
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, &previous_int_action);
  ::sigaction(SIGTERM, &action, &previous_term_action);
  installed_ = true;
}

StopSignals::~StopSignals() { finish(); }

void StopSignals::on_stop(std::function<void()> callback) {
  VTL_CHECK(!waiter_.joinable(), "StopSignals::on_stop: one callback only");
  waiter_ = std::thread([this, callback = std::move(callback)] {
    unsigned char signal = 0;
    if (::read(pipe_[0], &signal, 1) == 1 && signal != 0) callback();  // 0: finish()
  });
}

void StopSignals::finish() {
  if (!installed_) return;
  installed_ = false;
  ::sigaction(SIGINT, &previous_int_action, nullptr);
  ::sigaction(SIGTERM, &previous_term_action, nullptr);
  callback_pipe = -1;
  if (waiter_.joinable()) {
    const unsigned char wake = 0;
    write_bytes(pipe_[1], &wake, 1);
    waiter_.join();
  }
  ::close(pipe_[0]);
  ::close(pipe_[1]);
  interrupted_line = terminated_line = nullptr;
  received_signal = 0;
}

bool stop_requested() { return received_signal.load() != 0; }

int stop_signal() { return received_signal.load(); }

}  // namespace vtl

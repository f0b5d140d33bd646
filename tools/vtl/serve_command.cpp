// vtl serve INDEX [--host 127.0.0.1] [--port 8080]
//
// Built when the serve layer is (VTL_WITH_SERVER and VTL_WITH_FAISS).

#if defined(VTL_HAVE_SERVE)

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/serve/server.h"

namespace vtl::cli {
namespace {

struct ServeArgs {
  std::string index;
  serve::ServerOptions options;
  double max_upload_mb = 16;
};

/// The write end of StopSignals' pipe, for the signal handler (-1 when none).
std::atomic<int> stop_signal_pipe{-1};

extern "C" void forward_stop_signal(int signal) {
  const int fd = stop_signal_pipe.load();
  const auto byte = static_cast<unsigned char>(signal);
  if (fd >= 0) [[maybe_unused]]
    auto written = ::write(fd, &byte, 1);  // async-signal-safe
}

/// SIGINT and SIGTERM are handed to one waiting thread instead of killing the process, so
/// the server can answer the requests it has accepted and exit normally; a second signal
/// exits at once. The previous handlers are restored by finish().
class StopSignals {
 public:
  StopSignals() {
    VTL_CHECK(::pipe(pipe_) == 0, "cannot create a pipe for signal handling");
    stop_signal_pipe = pipe_[1];
    struct sigaction action {};
    action.sa_handler = forward_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &action, &previous_int_);
    ::sigaction(SIGTERM, &action, &previous_term_);
  }
  ~StopSignals() { finish(); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// Calls `on_signal` on the waiting thread at the first SIGINT or SIGTERM. Whatever
  /// `on_signal` uses must live until finish().
  template <typename Callback>
  void on_stop(Callback on_signal) {
    waiter_ = std::thread([this, on_signal] {
      for (int received = 0;; ++received) {
        unsigned char signal = 0;
        if (::read(pipe_[0], &signal, 1) != 1 || signal == 0) return;  // 0: finish()
        const char* name = signal == SIGINT ? "interrupted" : "terminated";
        if (received > 0) {
          std::cerr << fmt::format("{} again: exiting now", name) << std::endl;
          std::_Exit(128 + signal);
        }
        std::cerr << fmt::format("{}: stopping after the requests in progress", name) << std::endl;
        on_signal();
      }
    });
  }

  /// Ends the waiting thread (no callback runs after this returns) and restores the
  /// signals' previous handlers.
  void finish() {
    if (pipe_[0] < 0) return;
    ::sigaction(SIGINT, &previous_int_, nullptr);
    ::sigaction(SIGTERM, &previous_term_, nullptr);
    stop_signal_pipe = -1;
    if (waiter_.joinable()) {
      const unsigned char wake = 0;
      [[maybe_unused]] auto written = ::write(pipe_[1], &wake, 1);
      waiter_.join();
    }
    ::close(pipe_[0]);
    ::close(pipe_[1]);
    pipe_[0] = pipe_[1] = -1;
  }

 private:
  int pipe_[2] = {-1, -1};
  struct sigaction previous_int_ {
  }, previous_term_{};
  std::thread waiter_;
};

void run_serve(ServeArgs args) {
  VTL_CHECK(args.max_upload_mb > 0, "--max-upload-mb must be positive");
  args.options.max_upload_bytes = static_cast<int64_t>(args.max_upload_mb * (1 << 20));
  StopSignals signals;
  serve::SearchServer server(args.index, args.options);
  const int port = server.bind();
  signals.on_stop([&server] { server.stop(); });
  std::cout << fmt::format("serving {} at http://{}:{}/ (Ctrl-C to stop)", args.index,
                           args.options.host, port)
            << std::endl;
  try {
    server.listen();
  } catch (...) {
    signals.finish();
    throw;
  }
  signals.finish();  // before `server` goes: the waiting thread may be calling stop()
  std::cerr << "stopped" << std::endl;
}

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Web page and HTTP API for similarity search");
  cmd->add_option("index", args->index, "Index folder (vtl index build)")->required();
  cmd->add_option("--host", args->options.host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", args->options.port, "Port (default 8080; 0 = any free port)");
  cmd->add_option("--max-upload-mb", args->max_upload_mb, "Upload size limit (default 16)");
  cmd->add_option("--timeout", args->options.timeout_seconds,
                  "Read/write timeout per request, seconds (default 10)");
  cmd->add_option("--max-image-pixels", args->options.max_image_pixels,
                  "Refuse uploads with more pixels than this (default 50000000)");
  cmd->add_option("--workers", args->options.threads, "Worker threads (default 8)");
  cmd->callback([args] { run_serve(*args); });
}

}  // namespace

VTL_COMMAND(48, add_serve_command);

}  // namespace vtl::cli

#endif

#pragma once
// `vtl serve` run as a user runs it, in a child process, for tests that need the real
// server: its port, whether it still runs, and its memory.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace vtl::testing {

/// `vtl serve ARGUMENTS` in a child process; the port is read from its first line of
/// output (port() is 0 when it did not start). The destructor stops it with SIGTERM (SIGKILL
/// after 20 s) and reaps it.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& arguments) {
    // Built before fork: the child only calls async-signal-safe functions.
    std::vector<char*> argv = {const_cast<char*>(VTL_CLI_PATH)};
    for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::execv(VTL_CLI_PATH, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    const auto colon = line.rfind(':');
    if (colon != std::string::npos) port_ = std::atoi(line.c_str() + colon + 1);
  }
  ~ServeProcess() {
    if (stop(SIGTERM) == -2) stop(SIGKILL);
  }
  /// Sends `signal`, then wait(timeout_seconds).
  int stop(int signal, double timeout_seconds = 20) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    return wait(timeout_seconds);
  }
  /// Reaps the process, waiting at most `timeout_seconds`: its exit status (128 + signal
  /// when a signal ended it), -1 when it had already been reaped, -2 when it still runs.
  int wait(double timeout_seconds) {
    if (pid_ <= 0) return -1;
    for (int waited_ms = 0; waited_ms <= timeout_seconds * 1000; waited_ms += 5) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(5000);
    }
    return -2;
  }
  /// Sends `signal` without waiting.
  void signal(int signal) const {
    if (pid_ > 0) ::kill(pid_, signal);
  }
  int port() const { return port_; }
  /// Whether the process has not exited. Leaves an exited one unreaped (WNOWAIT), so its
  /// pid stays ours until wait() or stop() collects its status.
  bool running() const {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    return ::waitid(P_PID, id_t(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
  }
  /// Resident memory of the server process in MiB (VmRSS; VmHWM with peak = true).
  double rss_mib(bool peak = false) const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    const std::string key = peak ? "VmHWM:" : "VmRSS:";
    for (std::string line; std::getline(status, line);) {
      if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + key.size()) / 1024.0;
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace vtl::testing

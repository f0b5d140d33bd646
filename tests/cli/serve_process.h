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
/// output (port() is 0 when it did not start). SIGTERMed and reaped by the destructor.
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
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
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

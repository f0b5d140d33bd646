#pragma once
// Runs the built `vtl` binary as a user would and captures what it prints.

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <string>

namespace vtl::testing {

struct CliResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together, in order
};

/// Runs `vtl <arguments>` through the shell (quote arguments yourself), with stderr
/// merged into stdout. `environment` is prepended, e.g. "VTL_HOME=/tmp/x".
inline CliResult run_cli(const std::string& arguments, const std::string& environment = "") {
  const std::string command = environment + " " + VTL_CLI_PATH + " " + arguments + " 2>&1";
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace vtl::testing

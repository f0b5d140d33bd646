#pragma once
// What a call writes to file descriptor 2 (C stdio and libraries' own fprintf included).

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

namespace vtl::testing {

/// Runs `action` with fd 2 sent to a temporary file; returns what it wrote there.
inline std::string stderr_of(const std::function<void()>& action) {
  namespace fs = std::filesystem;
  const fs::path file = fs::temp_directory_path() / ("vtl_stderr_" + std::to_string(::getpid()));
  std::fflush(stderr);
  const int saved = ::dup(2);
  const int capture = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(capture, 2);
  try {
    action();
  } catch (...) {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(capture);
    ::close(saved);
    fs::remove(file);
    throw;
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(capture);
  ::close(saved);
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  fs::remove(file);
  return text.str();
}

}  // namespace vtl::testing

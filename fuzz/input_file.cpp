#include "input_file.h"

#include <unistd.h>

#include <fstream>
#include <system_error>

#include "vtl/core/error.h"

namespace vtl::fuzz {
namespace fs = std::filesystem;

namespace {

/// Owns the scratch folder; removes it at normal exit.
struct ScratchFolder {
  ScratchFolder() {
    std::error_code ec;
    const fs::path base =
        fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    path = base / ("vtl-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(path, ec);
    fs::create_directories(path);
  }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

}  // namespace

const fs::path& scratch_dir() {
  static const ScratchFolder folder;
  return folder.path;
}

fs::path write_input(const fs::path& relative, const uint8_t* data, size_t size) {
  const fs::path path = scratch_dir() / relative;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  // A harness problem, not a parser one: make it loud rather than a vtl::Error.
  if (!out) throw std::runtime_error("cannot write fuzz input " + path.string());
  return path;
}

fs::path write_input(const fs::path& relative, const std::string& text) {
  return write_input(relative, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

}  // namespace vtl::fuzz

#include "vtl/core/runtime.h"

#include <cstdlib>
#include <thread>

#include <torch/torch.h>

namespace vtl {

int configure_threads(int threads) {
  if (threads <= 0) {
    threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  torch::set_num_threads(threads);
  return torch::get_num_threads();
}

std::filesystem::path vtl_home() {
  if (const char* home = std::getenv("VTL_HOME"); home && *home) return home;
  if (const char* user_home = std::getenv("HOME"); user_home && *user_home) {
    return std::filesystem::path(user_home) / ".cache" / "vtl";
  }
  return std::filesystem::path(".cache") / "vtl";
}

std::filesystem::path data_dir() {
  namespace fs = std::filesystem;
  if (const char* dir = std::getenv("VTL_DATA_DIR"); dir && *dir) return dir;
  std::error_code ec;
  const auto holds_data = [&](const fs::path& dir) {
    return fs::exists(dir / "weights_catalogue.json", ec);
  };
  const fs::path source = VTL_SOURCE_DATA_DIR;
  if (holds_data(source)) return source;
  // PREFIX/bin/vtl reads PREFIX/share/vtl: an install under another prefix than the
  // configured one (`cmake --install build --prefix DIR`), or moved.
  const fs::path program = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = program.parent_path().parent_path() / "share" / "vtl";
    if (holds_data(beside)) return beside;
  }
  return VTL_INSTALL_DATA_DIR;
}

}  // namespace vtl

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
  if (const char* dir = std::getenv("VTL_DATA_DIR"); dir && *dir) return dir;
  const std::filesystem::path installed = "/usr/local/share/vtl";
  const std::filesystem::path source = VTL_DATA_DIR;
  if (std::filesystem::exists(source)) return source;
  return installed;
}

}  // namespace vtl

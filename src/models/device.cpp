#include "vtl/models/device.h"

#include "vtl/core/error.h"

namespace vtl::models {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  const bool cuda = name == "cuda" || name.rfind("cuda:", 0) == 0;
  VTL_CHECK(cuda, "unknown device '{}': expected cpu, cuda or cuda:N", name);
  int64_t index = 0;
  if (name.size() > 5) {
    const std::string digits = name.substr(5);
    VTL_CHECK(digits.find_first_not_of("0123456789") == std::string::npos && digits.size() <= 3,
              "unknown device '{}': expected cpu, cuda or cuda:N", name);
    index = std::stoll(digits);
  }
  VTL_CHECK(torch::cuda::is_available(),
            "--device {}: no CUDA device is available to this build of LibTorch", name);
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  VTL_CHECK(index < count, "--device {}: this machine shows {} GPU{} (cuda:0 to cuda:{})", name,
            count, count == 1 ? "" : "s", count - 1);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace vtl::models

#include "vtl/models/precision.h"

#include <fstream>
#include <string>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "vtl/core/error.h"

// LibTorch 2.4 made the autocast switches per device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define VTL_AUTOCAST_PER_DEVICE 1
#else
#define VTL_AUTOCAST_PER_DEVICE 0
#endif

namespace vtl::models {
namespace {

bool autocast_enabled(bool cuda) {
#if VTL_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_autocast(bool cuda, bool enabled) {
#if VTL_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, enabled);
#else
  if (cuda)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

at::ScalarType autocast_dtype(bool cuda) {
#if VTL_AUTOCAST_PER_DEVICE
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast_dtype(bool cuda, at::ScalarType dtype) {
#if VTL_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dtype);
#else
  if (cuda)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

}  // namespace

Precision parse_precision(const std::string& text) {
  if (text == "off" || text == "f32" || text.empty()) return Precision::f32;
  if (text == "bf16") return Precision::bf16;
  if (text == "fp16") return Precision::fp16;
  fail("unknown --amp '{}': expected off, bf16 or fp16", text);
}

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::bf16:
      return "bf16";
    case Precision::fp16:
      return "fp16";
    case Precision::f32:
      break;
  }
  return "off";
}

void check_precision_supported(Precision precision, const torch::Device& device) {
  VTL_CHECK(!(precision == Precision::fp16 && !device.is_cuda()),
            "--amp fp16 needs --device cuda; on the CPU use --amp bf16");
}

namespace {

/// The instruction-set flags of the first processor in /proc/cpuinfo ("flags" on x86,
/// "Features" on Arm), space-separated; "" where unreadable.
std::string cpu_flags() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 1);
    }
  }
  return "";
}

}  // namespace

std::string precision_advice(Precision precision, const torch::Device& device) {
  static const std::string flags = cpu_flags();
  return precision_advice(precision, device, flags);
}

std::string precision_advice(Precision precision, const torch::Device& device,
                             const std::string& cpu_flags) {
  if (precision != Precision::bf16 || device.is_cuda()) return "";
  if (cpu_flags.find_first_not_of(' ') == std::string::npos) return "";
  const std::string padded = " " + cpu_flags + " ";
  for (const char* flag : {" avx512_bf16 ", " amx_bf16 ", " bf16 "})
    if (padded.find(flag) != std::string::npos) return "";
  return "this CPU lists no bf16 instructions (avx512_bf16, amx_bf16): bf16 autocast "
         "will likely run slower than f32 here";
}

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) {
  if (precision == Precision::f32) return;
  active_ = true;
  cuda_ = device.is_cuda();
  was_enabled_ = autocast_enabled(cuda_);
  previous_dtype_ = autocast_dtype(cuda_);
  set_autocast_dtype(cuda_, precision == Precision::fp16 ? at::kHalf : at::kBFloat16);
  set_autocast(cuda_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Leaving the outermost scope drops the cached low-precision weight copies.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(cuda_, was_enabled_);
  set_autocast_dtype(cuda_, previous_dtype_);
}

}  // namespace vtl::models

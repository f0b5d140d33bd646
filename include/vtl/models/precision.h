#pragma once
// Running a model in lower precision: bf16 or fp16 autocast around a forward pass (matrix
// products and convolutions in the lower precision, parameters stay float32).
//   CUDA: bf16 and fp16.  CPU: bf16 only (fp16 autocast is CUDA-only here); fast where the
//   CPU has bf16 instructions (AVX512-BF16, AMX), slower than f32 where it has not.

#include <string>

#include <torch/torch.h>

namespace vtl::models {

enum class Precision { f32, bf16, fp16 };
/// "off" (or "f32"), "bf16", "fp16"; throws vtl::Error otherwise.
Precision parse_precision(const std::string& text);
std::string to_string(Precision precision);
/// Throws vtl::Error with what to change when `precision` cannot run on `device`.
void check_precision_supported(Precision precision, const torch::Device& device);

/// "" when `precision` suits `device`; otherwise a sentence for the user: bf16 on a CPU
/// whose /proc/cpuinfo lists no bf16 instructions (x86 avx512_bf16 / amx_bf16, Arm bf16)
/// runs slower than f32. Unknown CPUs get "".
std::string precision_advice(Precision precision, const torch::Device& device);
/// The same for a CPU with these instruction-set flags (space-separated, as in
/// /proc/cpuinfo; "" = unknown).
std::string precision_advice(Precision precision, const torch::Device& device,
                             const std::string& cpu_flags);

/// Autocast to `precision` for `device` for the lifetime of the object (this thread only);
/// f32 does nothing. Not copyable; nest freely.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace vtl::models

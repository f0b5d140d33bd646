#pragma once
// Mixed precision for training (`--amp bf16|fp16`): an autocast scope around the forward
// pass, and dynamic loss scaling for fp16 (PyTorch's torch.amp.GradScaler defaults:
// initial scale 65536, halved on an inf/NaN gradient with that step skipped, doubled after
// 2000 finite steps). Parameters and optimizer state stay float32.
//   CUDA: bf16 and fp16.  CPU: bf16 only (fp16 autocast is CUDA-only here).

#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace vtl::train {

enum class Precision { f32, bf16, fp16 };
/// "off" (or "f32"), "bf16", "fp16"; throws vtl::Error otherwise.
Precision parse_precision(const std::string& text);
std::string to_string(Precision precision);
/// Throws vtl::Error with what to change when `precision` cannot run on `device`.
void check_precision_supported(Precision precision, const torch::Device& device);

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

/// Dynamic loss scaling; a disabled scaler passes everything through unchanged.
class LossScaler {
 public:
  explicit LossScaler(bool enabled = false) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  /// loss * scale (backward this).
  torch::Tensor scaled(const torch::Tensor& loss) const;
  /// Divides the gradients of `parameters` by the scale in place; false when any is
  /// inf/NaN (then skip optimizer.step()).
  bool unscale(const std::vector<torch::Tensor>& parameters) const;
  /// After each step: halves the scale on overflow, doubles it after `growth_interval`
  /// finite steps in a row.
  void update(bool finite);

  nlohmann::json state() const;  ///< for checkpoints
  void load_state(const nlohmann::json& state);

 private:
  bool enabled_;
  double scale_ = 65536.0;
  int64_t growth_interval_ = 2000;
  int64_t finite_steps_ = 0;
};

}  // namespace vtl::train

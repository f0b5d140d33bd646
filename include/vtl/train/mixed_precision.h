#pragma once
// Mixed precision for training (`--amp bf16|fp16`): the autocast scope of
// vtl/models/precision.h around the forward pass, and dynamic loss scaling for fp16
// (PyTorch's torch.amp.GradScaler defaults: initial scale 65536, halved on an inf/NaN
// gradient with that step skipped, doubled after 2000 finite steps). Parameters and
// optimizer state stay float32.

#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "vtl/models/precision.h"

namespace vtl::train {

using models::AutocastScope;
using models::check_precision_supported;
using models::parse_precision;
using models::Precision;
using models::to_string;

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

#include "vtl/train/mixed_precision.h"

namespace vtl::train {

torch::Tensor LossScaler::scaled(const torch::Tensor& loss) const {
  return enabled_ ? loss * scale_ : loss;
}

bool LossScaler::unscale(const std::vector<torch::Tensor>& parameters) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> finite_flags;
  for (const auto& p : parameters) {
    auto grad = p.grad();
    if (!grad.defined()) continue;
    grad.mul_(1.0 / scale_);
    finite_flags.push_back(torch::isfinite(grad).all());
  }
  if (finite_flags.empty()) return true;
  return torch::stack(finite_flags).all().item<bool>();
}

void LossScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ *= 0.5;
    finite_steps_ = 0;
  } else if (++finite_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    finite_steps_ = 0;
  }
}

nlohmann::json LossScaler::state() const {
  return {{"enabled", enabled_}, {"scale", scale_}, {"finite_steps", finite_steps_}};
}

void LossScaler::load_state(const nlohmann::json& state) {
  if (state.is_null()) return;
  scale_ = state.value("scale", scale_);
  finite_steps_ = state.value("finite_steps", finite_steps_);
}

}  // namespace vtl::train

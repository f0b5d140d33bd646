#include "vtl/models/batch_norm.h"

#include <memory>
#include <utility>

#include "vtl/core/error.h"

namespace vtl::models {

BatchNorm2dImpl::BatchNorm2dImpl(int64_t num_features, double eps, double momentum)
    : num_features_(num_features), eps_(eps), momentum_(momentum) {
  weight = register_parameter("weight", torch::ones({num_features}));
  bias = register_parameter("bias", torch::zeros({num_features}));
  running_mean = register_buffer("running_mean", torch::zeros({num_features}));
  running_var = register_buffer("running_var", torch::ones({num_features}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(int64_t{0}));
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  VTL_CHECK(x.dim() == 4, "BatchNorm2d expects [N, C, H, W] input (got {} dimensions)", x.dim());
  if (folded_) {
    VTL_CHECK(!is_training(), "a BatchNorm folded into its convolution cannot train");
    return x;
  }
  if (is_training()) num_batches_tracked += 1;
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_,
                           eps_, at::globalContext().userEnabledCuDNN());
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "vtl::models::BatchNorm2d(" << num_features_ << ", eps=" << eps_
         << ", momentum=" << momentum_ << (folded_ ? ", folded" : "") << ")";
}

namespace {

/// LibTorch registers an undefined `bias` for a bias-free convolution and cannot register
/// a name twice, so the registered slot is replaced in place. `&ParameterSlots::parameters_` names
/// the protected member of torch::nn::Module, usable on any module.
struct ParameterSlots : torch::nn::Module {
  static torch::Tensor& slot(torch::nn::Module& module, const std::string& name) {
    auto& parameters = module.*(&ParameterSlots::parameters_);
    auto* found = parameters.find(name);
    VTL_CHECK(found != nullptr, "module has no parameter slot '{}'", name);
    return *found;
  }
};

}  // namespace

void BatchNorm2dImpl::fold_into(torch::nn::Conv2dImpl& conv) {
  VTL_CHECK(!folded_, "this BatchNorm is already folded");
  VTL_CHECK(conv.options.out_channels() == num_features_,
            "cannot fold a BatchNorm of {} channels into a convolution with {} outputs",
            num_features_, conv.options.out_channels());
  torch::NoGradGuard no_grad;
  // y = (conv(x) + b - mean) * gamma / sqrt(var + eps) + beta, computed in float64.
  const auto scale = weight.to(torch::kFloat64) / (running_var.to(torch::kFloat64) + eps_).sqrt();
  const auto old_bias =
      conv.bias.defined() ? conv.bias.to(torch::kFloat64) : torch::zeros_like(scale);
  const auto new_bias =
      (old_bias - running_mean.to(torch::kFloat64)) * scale + bias.to(torch::kFloat64);
  conv.weight.copy_(conv.weight.to(torch::kFloat64) * scale.view({-1, 1, 1, 1}));
  if (conv.bias.defined()) {
    conv.bias.copy_(new_bias);
  } else {
    auto& slot = ParameterSlots::slot(conv, "bias");
    slot = new_bias.to(conv.weight.options()).set_requires_grad(false);
    conv.bias = slot;
  }
  folded_ = true;
}

int64_t fold_batch_norms(torch::nn::Module& root) {
  int64_t folded = 0;
  for (const auto& parent : root.modules(/*include_self=*/true)) {
    std::shared_ptr<torch::nn::Module> previous;
    for (const auto& child : parent->children()) {
      auto* norm = child->as<BatchNorm2d>();
      auto* conv = previous ? previous->as<torch::nn::Conv2d>() : nullptr;
      if (norm != nullptr && conv != nullptr && !norm->folded()) {
        norm->fold_into(*conv);
        ++folded;
      }
      previous = child;
    }
  }
  return folded;
}

}  // namespace vtl::models

#include "vtl/models/batch_norm.h"

#include <functional>
#include <memory>
#include <string>
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

/// A module's registered parameter, to be replaced in place: LibTorch cannot register a
/// name twice (and registers an undefined `bias` for a bias-free convolution).
/// `&ParameterSlots::parameters_` names the protected member of torch::nn::Module, usable
/// on any module.
struct ParameterSlots : torch::nn::Module {
  static torch::Tensor& slot(torch::nn::Module& module, const std::string& name) {
    auto& parameters = module.*(&ParameterSlots::parameters_);
    auto* found = parameters.find(name);
    VTL_CHECK(found != nullptr, "module has no parameter slot '{}'", name);
    return *found;
  }
};

/// Makes `tensor` conv's `weight` or `bias`, registered and in the public member alike.
void set_conv_tensor(torch::nn::Conv2dImpl& conv, const std::string& name, torch::Tensor tensor) {
  ParameterSlots::slot(conv, name) = tensor;
  (name == "weight" ? conv.weight : conv.bias) = std::move(tensor);
}

/// Calls visit(conv, norm) for every BatchNorm2d below `root` whose parent registered a
/// Conv2d just before it.
void for_each_conv_norm(torch::nn::Module& root,
                        const std::function<void(torch::nn::Conv2dImpl&,
                                                 const std::shared_ptr<BatchNorm2dImpl>&)>& visit) {
  for (const auto& parent : root.modules(/*include_self=*/true)) {
    std::shared_ptr<torch::nn::Module> previous;
    for (const auto& child : parent->children()) {
      auto norm = std::dynamic_pointer_cast<BatchNorm2dImpl>(child);
      auto* conv = previous ? previous->as<torch::nn::Conv2d>() : nullptr;
      if (norm && conv != nullptr) visit(*conv, norm);
      previous = child;
    }
  }
}

bool frozen(const torch::Tensor& parameter) {
  return !parameter.defined() || !parameter.requires_grad();
}

}  // namespace

void BatchNorm2dImpl::fold_into(torch::nn::Conv2dImpl& conv, bool keep_original) {
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
  auto new_weight = (conv.weight.to(torch::kFloat64) * scale.view({-1, 1, 1, 1}))
                        .to(conv.weight.scalar_type())
                        .contiguous(conv.weight.suggest_memory_format());
  if (keep_original) {
    folded_conv_ = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(conv.shared_from_this());
    original_weight_ = conv.weight;
    original_bias_ = conv.bias;
  }
  set_conv_tensor(conv, "bias", new_bias.to(conv.weight.dtype()).set_requires_grad(false));
  set_conv_tensor(conv, "weight", new_weight.set_requires_grad(false));
  folded_ = true;
}

void BatchNorm2dImpl::unfold() {
  VTL_CHECK(folded_ && folded_conv_, "this BatchNorm was not folded with its original kept");
  set_conv_tensor(*folded_conv_, "weight", original_weight_);
  set_conv_tensor(*folded_conv_, "bias", original_bias_);
  folded_conv_.reset();
  original_weight_ = original_bias_ = torch::Tensor();
  folded_ = false;
}

int64_t fold_batch_norms(torch::nn::Module& root) {
  int64_t folded = 0;
  for_each_conv_norm(
      root, [&](torch::nn::Conv2dImpl& conv, const std::shared_ptr<BatchNorm2dImpl>& norm) {
        if (norm->folded()) return;
        VTL_CHECK(!norm->is_training(),
                  "BatchNorm can only be folded in eval mode (call eval() on the model first)");
        norm->fold_into(conv);
        ++folded;
      });
  return folded;
}

bool has_folded_batch_norms(torch::nn::Module& root) {
  for (const auto& module : root.modules(/*include_self=*/true)) {
    const auto* norm = dynamic_cast<const BatchNorm2dImpl*>(module.get());
    if (norm && norm->folded()) return true;
  }
  return false;
}

FoldedBatchNorms::FoldedBatchNorms(torch::nn::Module& root) {
  for_each_conv_norm(
      root, [&](torch::nn::Conv2dImpl& conv, const std::shared_ptr<BatchNorm2dImpl>& norm) {
        if (norm->folded() || norm->is_training() || !frozen(norm->weight) || !frozen(norm->bias) ||
            !frozen(conv.weight) || !frozen(conv.bias))
          return;
        norm->fold_into(conv, /*keep_original=*/true);
        folded_.push_back(norm);
      });
}

FoldedBatchNorms::~FoldedBatchNorms() {
  for (auto it = folded_.rbegin(); it != folded_.rend(); ++it) (*it)->unfold();
}

}  // namespace vtl::models

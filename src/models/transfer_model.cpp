#include "vtl/models/transfer_model.h"

#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vtl/core/error.h"
#include "vtl/core/text.h"

namespace vtl::models {
namespace {

constexpr const char* kBase = "base.";
constexpr const char* kHead = "head.";

}  // namespace

std::string transfer_head_prefix(const Model& base) {
  const std::string& family = base->info().family;
  // torchvision's classifier is one linear layer on the pooled features for these.
  if (family == "resnet") return "fc";
  if (family == "efficientnet" || family == "mobilenet_v2") return "classifier.1";
  return "head";
}

TransferModelImpl::TransferModelImpl(Model base_model, int64_t num_classes, double dropout_p)
    : num_classes_(num_classes), dropout_rate_(dropout_p) {
  VTL_CHECK(base_model, "transfer model: no base network");
  VTL_CHECK(!base_model->options().include_top(),
            "transfer model: the base {} must be built with include_top=false", base_model->name());
  VTL_CHECK(num_classes > 0, "transfer model: number of classes must be positive (got {})",
            num_classes);
  VTL_CHECK(dropout_p >= 0.0 && dropout_p < 1.0,
            "transfer model: dropout must be in [0, 1) (got {})", dropout_p);
  base = register_module("base", base_model);
  dropout = register_module("dropout", torch::nn::Dropout(dropout_p));
  head_prefix_ = transfer_head_prefix(base);
  reset_head(num_classes);
}

void TransferModelImpl::reset_head(int64_t num_classes) {
  VTL_CHECK(num_classes > 0, "transfer model: number of classes must be positive (got {})",
            num_classes);
  if (head) unregister_module("head");
  head = register_module("head", torch::nn::Linear(num_features(), num_classes));
  num_classes_ = num_classes;
}

torch::Tensor TransferModelImpl::features(torch::Tensor images) {
  return base->forward_features(std::move(images)).mean({2, 3});
}

torch::Tensor TransferModelImpl::forward_head(torch::Tensor pooled) {
  return head(dropout(std::move(pooled)));
}

torch::Tensor TransferModelImpl::forward(torch::Tensor images) {
  return forward_head(features(std::move(images)));
}

weights::StateDict TransferModelImpl::export_state_dict() const {
  weights::StateDict out;
  auto add = [&](const std::string& name, const torch::Tensor& tensor) {
    std::string key;
    if (starts_with(name, kBase)) {
      key = name.substr(std::char_traits<char>::length(kBase));
    } else if (starts_with(name, kHead)) {
      key = head_prefix_ + "." + name.substr(std::char_traits<char>::length(kHead));
    } else {
      return;  // dropout has no state
    }
    out[key] = tensor.detach().to(torch::kCPU).contiguous().clone();
  };
  for (const auto& item : named_parameters(/*recurse=*/true)) add(item.key(), item.value());
  for (const auto& item : named_buffers(/*recurse=*/true)) add(item.key(), item.value());
  return out;
}

void TransferModelImpl::import_state_dict(const weights::StateDict& state,
                                          const std::string& source) {
  auto own = export_state_dict();  // names and shapes only
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [key, tensor] : own) {
    auto it = state.find(key);
    if (it == state.end()) {
      missing.push_back(key);
    } else if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(fmt::format("{} (file {}, model {})", key,
                                       fmt::join(it->second.sizes(), "x"),
                                       fmt::join(tensor.sizes(), "x")));
    }
  }
  for (const auto& [key, tensor] : state) {
    if (!own.count(key)) unexpected.push_back(key);
  }
  auto list = [](const std::vector<std::string>& keys) {
    const size_t shown = std::min<size_t>(keys.size(), 5);
    std::string text = fmt::format("{}", fmt::join(keys.begin(), keys.begin() + shown, ", "));
    if (keys.size() > shown) text += fmt::format(" and {} more", keys.size() - shown);
    return text;
  };
  VTL_CHECK(mismatched.empty(), "{}: tensor shapes do not match {}: {}", source, architecture(),
            list(mismatched));
  VTL_CHECK(missing.empty(), "{}: missing {} tensors of {}: {}", source, missing.size(),
            architecture(), list(missing));
  VTL_CHECK(unexpected.empty(), "{}: {} tensors that {} does not have: {}", source,
            unexpected.size(), architecture(), list(unexpected));

  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& name, torch::Tensor& target) {
    std::string key;
    if (starts_with(name, kBase)) {
      key = name.substr(std::char_traits<char>::length(kBase));
    } else if (starts_with(name, kHead)) {
      key = head_prefix_ + "." + name.substr(std::char_traits<char>::length(kHead));
    } else {
      return;
    }
    const auto& value = state.at(key);
    target.copy_(value.to(target.device(), target.scalar_type()));
  };
  for (auto& item : named_parameters(true)) assign(item.key(), item.value());
  for (auto& item : named_buffers(true)) assign(item.key(), item.value());
}

}  // namespace vtl::models

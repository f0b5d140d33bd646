#include "vtl/models/model.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vtl/core/error.h"

namespace vtl::models {

std::string to_string(Pooling pooling) {
  switch (pooling) {
    case Pooling::avg:
      return "avg";
    case Pooling::max:
      return "max";
    case Pooling::none:
      return "none";
  }
  return "avg";
}

Pooling parse_pooling(const std::string& text) {
  if (text == "avg") return Pooling::avg;
  if (text == "max") return Pooling::max;
  if (text == "none") return Pooling::none;
  fail("unknown pooling '{}': expected avg, max or none", text);
}

ModelImpl::ModelImpl(ModelInfo info, ModelOptions options)
    : info_(std::move(info)), options_(std::move(options)) {
  VTL_CHECK(!options_.include_top() || options_.num_classes() > 0,
            "{}: num_classes must be positive when include_top is set (got {})", info_.name,
            options_.num_classes());
}

torch::Tensor ModelImpl::forward_features(torch::Tensor x) {
  VTL_CHECK(x.dim() == 4 && x.size(1) == 3, "{}: expected images of shape [N, 3, H, W], got {}",
            info_.name, fmt::format("{}", fmt::join(x.sizes(), ", ")));
  for (const auto& stage : stages_) x = stage.run(x);
  return x;
}

torch::Tensor ModelImpl::forward(torch::Tensor x) { return forward_head(forward_features(x)); }

void ModelImpl::add_stage(std::string name, torch::nn::Sequential sequence, size_t first,
                          size_t last) {
  stages_.push_back({std::move(name), [sequence, first, last](torch::Tensor x) mutable {
                       auto it = sequence->begin();
                       for (size_t i = first; i < last; ++i) {
                         x = (it + static_cast<std::ptrdiff_t>(i))->forward(x);
                       }
                       return x;
                     }});
}

torch::Tensor ModelImpl::pool(const torch::Tensor& features) const {
  switch (options_.pooling()) {
    case Pooling::avg:
      return features.mean({2, 3});
    case Pooling::max:
      return features.amax({2, 3});
    case Pooling::none:
      return features;
  }
  return features;
}

std::vector<std::string> ModelImpl::tap_names() const {
  std::vector<std::string> names;
  for (const auto& stage : stages_) names.push_back(stage.name);
  names.push_back("features");
  names.push_back("avg_pool");
  if (options_.include_top()) {
    names.push_back("pre_logits");
    names.push_back("logits");
  }
  return names;
}

std::map<std::string, torch::Tensor> ModelImpl::forward_taps(torch::Tensor x,
                                                             const std::vector<std::string>& taps) {
  const auto valid = tap_names();
  size_t last = 0;
  for (const auto& tap : taps) {
    auto it = std::find(valid.begin(), valid.end(), tap);
    VTL_CHECK(it != valid.end(), "{} has no layer '{}'; valid layers: {}", info_.name, tap,
              fmt::format("{}", fmt::join(valid, ", ")));
    last = std::max(last, static_cast<size_t>(it - valid.begin()));
  }
  auto wanted = [&](const std::string& name) {
    return std::find(taps.begin(), taps.end(), name) != taps.end();
  };
  std::map<std::string, torch::Tensor> out;
  size_t index = 0;
  for (const auto& stage : stages_) {
    x = stage.run(x);
    if (wanted(stage.name)) out[stage.name] = x;
    if (index++ >= last) return out;
  }
  if (wanted("features")) out["features"] = x;
  if (index++ >= last) return out;
  if (wanted("avg_pool")) out["avg_pool"] = x.mean({2, 3});
  if (index++ >= last) return out;
  auto pre_logits = forward_head(x, /*pre_logits=*/true);
  if (wanted("pre_logits")) out["pre_logits"] = pre_logits;
  if (index++ >= last) return out;
  out["logits"] = forward_head(x, /*pre_logits=*/false);
  return out;
}

}  // namespace vtl::models

#include "vtl/train/freeze.h"

#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vtl/core/error.h"
#include "vtl/models/batch_norm.h"

namespace vtl::train {

std::vector<Layer> weighted_layers(models::Model& base) {
  std::vector<Layer> layers;
  for (const auto& item : base->named_modules("", /*include_self=*/false)) {
    if (!item.value()->named_parameters(/*recurse=*/false).is_empty())
      layers.push_back({item.key(), item.value()});
  }
  return layers;
}

namespace {
void set_requires_grad(torch::nn::Module& module, bool value, bool recurse) {
  for (auto& parameter : module.parameters(recurse)) parameter.set_requires_grad(value);
}
}  // namespace

void freeze_base(models::TransferModel& model) {
  set_requires_grad(*model->base, false, true);
  set_requires_grad(*model->head, true, true);
}

void unfreeze_all(models::TransferModel& model) { set_requires_grad(*model, true, true); }

std::vector<std::string> unfreeze_last(models::TransferModel& model, int64_t count) {
  VTL_CHECK(count >= 0, "--unfreeze must be 0 or more (got {})", count);
  auto layers = weighted_layers(model->base);
  const size_t first = layers.size() - std::min<size_t>(layers.size(), size_t(count));
  std::vector<std::string> names;
  for (size_t i = first; i < layers.size(); ++i) {
    set_requires_grad(*layers[i].module, true, false);
    names.push_back(layers[i].name);
  }
  return names;
}

namespace {

/// Index in `layers` of the first layer named `block` or inside it; an unknown block
/// throws vtl::Error listing the top-level blocks of `architecture`.
size_t first_layer_of(const std::vector<Layer>& layers, const std::string& block,
                      const std::string& architecture) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& name = layers[i].name;
    if (name == block || name.compare(0, block.size() + 1, block + ".") == 0) return i;
  }
  std::vector<std::string> blocks;
  std::set<std::string> seen;
  for (const auto& layer : layers) {
    auto top = layer.name.substr(0, layer.name.find('.'));
    if (top == "features" || top == "blocks") {  // sequential families: one level deeper
      const auto second = layer.name.find('.', top.size() + 1);
      top = layer.name.substr(0, second);
    }
    if (seen.insert(top).second) blocks.push_back(top);
  }
  fail("{} has no block '{}'; blocks: {}", architecture, block, fmt::join(blocks, ", "));
}

}  // namespace

void check_unfreeze_block(models::TransferModel& model, const std::string& block) {
  first_layer_of(weighted_layers(model->base), block, model->architecture());
}

std::vector<std::string> unfreeze_from(models::TransferModel& model, const std::string& block) {
  auto layers = weighted_layers(model->base);
  const size_t first = first_layer_of(layers, block, model->architecture());
  std::vector<std::string> names;
  for (size_t i = first; i < layers.size(); ++i) {
    set_requires_grad(*layers[i].module, true, false);
    names.push_back(layers[i].name);
  }
  return names;
}

std::vector<torch::Tensor> trainable_parameters(models::TransferModel& model) {
  std::vector<torch::Tensor> out;
  for (auto& parameter : model->parameters(true))
    if (parameter.requires_grad()) out.push_back(parameter);
  return out;
}

std::vector<ParameterGroup> layerwise_parameter_groups(models::TransferModel& model, double ratio) {
  VTL_CHECK(ratio >= 1, "the learning-rate ratio must be 1 or more (got {})", ratio);
  std::vector<ParameterGroup> groups;
  std::set<const void*> grouped;
  for (const auto& layer : weighted_layers(model->base)) {
    ParameterGroup group{layer.name, {}, 1.0};
    for (auto& parameter : layer.module->parameters(false)) {
      if (!parameter.requires_grad()) continue;
      group.parameters.push_back(parameter);
      grouped.insert(parameter.unsafeGetTensorImpl());
    }
    if (!group.parameters.empty()) groups.push_back(std::move(group));
  }
  ParameterGroup rest{"head", {}, 1.0};
  for (auto& parameter : trainable_parameters(model))
    if (!grouped.count(parameter.unsafeGetTensorImpl())) rest.parameters.push_back(parameter);
  const double n = double(groups.size());
  for (size_t g = 0; g < groups.size(); ++g)
    groups[g].lr_scale = std::pow(ratio, -(n - double(g)) / n);
  if (!rest.parameters.empty()) groups.push_back(std::move(rest));
  return groups;
}

bool base_is_frozen(models::TransferModel& model) {
  for (auto& parameter : model->base->parameters(true))
    if (parameter.requires_grad()) return false;
  return true;
}

void set_training_mode(models::TransferModel& model, bool base_trains, bool train_bn) {
  model->train(true);
  if (base_trains) return;
  model->base->eval();
  if (!train_bn) return;
  for (const auto& layer : weighted_layers(model->base)) {
    bool trainable = false;
    for (auto& parameter : layer.module->parameters(false)) trainable |= parameter.requires_grad();
    if (trainable && (layer.module->as<models::BatchNorm2d>() != nullptr))
      layer.module->train(true);
  }
}

}  // namespace vtl::train

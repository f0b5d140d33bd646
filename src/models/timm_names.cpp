#include "vtl/models/timm_names.h"

#include <map>
#include <regex>
#include <vector>

#include <fmt/format.h>

#include "vtl/core/text.h"

namespace vtl::models {
namespace {

/// timm's blocks (timm/models/_efficientnet_blocks.py) and where torchvision keeps the
/// same layers: the modules of a block in the order it runs them, each a (timm conv or SE
/// module, timm BatchNorm) pair; torchvision numbers them 0, 1, 2... inside `block`.
struct BlockLayout {
  std::vector<std::pair<std::string, std::string>> parts;
};

/// Inverted residual (conv_pw expands, conv_dw, SE, conv_pwl projects), depthwise-separable
/// (conv_dw, SE, conv_pw; timm's block for an expansion ratio of 1) or ConvBnAct (conv).
BlockLayout block_layout(const weights::StateDict& state_dict, const std::string& block) {
  const bool se = state_dict.count(block + "se.conv_reduce.weight") > 0;
  BlockLayout layout;
  if (state_dict.count(block + "conv_pwl.weight")) {
    layout.parts = {{"conv_pw", "bn1"}, {"conv_dw", "bn2"}};
    if (se) layout.parts.push_back({"se", ""});
    layout.parts.push_back({"conv_pwl", "bn3"});
  } else if (state_dict.count(block + "conv_dw.weight")) {
    layout.parts = {{"conv_dw", "bn1"}};
    if (se) layout.parts.push_back({"se", ""});
    layout.parts.push_back({"conv_pw", "bn2"});
  } else {
    layout.parts = {{"conv", "bn1"}};
  }
  return layout;
}

/// "conv_dw.weight" of a block -> its torchvision name inside `torchvision_block` (which
/// ends with '.'); empty when the block has no such module.
std::string rename_in_block(const std::string& rest, const BlockLayout& layout,
                            const std::string& torchvision_block, bool sequential_parts) {
  for (size_t i = 0; i < layout.parts.size(); ++i) {
    const auto& [conv, norm] = layout.parts[i];
    // A ConvBnAct is torchvision's Conv2dNormActivation itself: "N.0" conv, "N.1" norm.
    const std::string at =
        sequential_parts ? fmt::format("{}block.{}.", torchvision_block, i) : torchvision_block;
    if (conv == "se") {
      if (starts_with(rest, "se.conv_reduce.")) return at + "fc1." + rest.substr(15);
      if (starts_with(rest, "se.conv_expand.")) return at + "fc2." + rest.substr(15);
      continue;
    }
    if (starts_with(rest, conv + ".")) return at + "0." + rest.substr(conv.size() + 1);
    if (starts_with(rest, norm + ".")) return at + "1." + rest.substr(norm.size() + 1);
  }
  return {};
}

}  // namespace

namespace {

/// timm's VGG keeps torchvision's `features` and puts the classifier in pre_logits (fc1:
/// a 7x7 convolution over the last 7x7 map, fc2: 1x1) and head.fc; torchvision's
/// classifier.0 and .3 are the same products as Linear layers over the flattened map.
std::string rename_timm_vgg_keys(weights::StateDict& state_dict) {
  if (!state_dict.count("pre_logits.fc1.weight")) return {};
  static const std::pair<const char*, const char*> kRenames[] = {
      {"pre_logits.fc1.", "classifier.0."},
      {"pre_logits.fc2.", "classifier.3."},
      {"head.fc.", "classifier.6."},
  };
  weights::StateDict renamed;
  for (auto& [key, tensor] : state_dict) {
    std::string name = key;
    torch::Tensor value = tensor;
    for (const auto& [timm, torchvision] : kRenames) {
      if (!starts_with(key, timm)) continue;
      name = torchvision + key.substr(std::string(timm).size());
      if (value.dim() == 4) value = value.flatten(1);  // [O, C, kh, kw] -> [O, C*kh*kw]
    }
    renamed.emplace(std::move(name), std::move(value));
  }
  state_dict = std::move(renamed);
  return "read timm's VGG names (pre_logits.fc1/fc2 convolutions, head.fc) as torchvision's "
         "classifier";
}

}  // namespace

std::string rename_timm_keys(const std::string& architecture, weights::StateDict& state_dict) {
  if (starts_with(architecture, "vgg")) return rename_timm_vgg_keys(state_dict);
  const bool efficientnet = starts_with(architecture, "efficientnet_b");
  const bool mobilenet_v3 = starts_with(architecture, "mobilenet_v3");
  if (!efficientnet && !mobilenet_v3) return {};
  if (!state_dict.count("conv_stem.weight") || !state_dict.count("conv_head.weight")) return {};

  // Blocks in order: timm nests them in stages (blocks.S.B); torchvision's EfficientNet
  // keeps the stages (features.S+1.B), its MobileNetV3 counts blocks (features.1+i).
  const std::regex block_pattern(R"(blocks\.(\d+)\.(\d+)\.(.*))");
  std::map<std::pair<int, int>, int> block_index;
  int stages = 0;
  for (const auto& [key, tensor] : state_dict) {
    std::smatch match;
    if (!std::regex_match(key, match, block_pattern)) continue;
    const int stage = std::stoi(match[1].str()), block = std::stoi(match[2].str());
    block_index[{stage, block}] = 0;
    stages = std::max(stages, stage + 1);
  }
  int next = 0;
  for (auto& [position, index] : block_index) index = next++;  // map order: stage, block

  const std::string head = fmt::format("features.{}.", stages + 1);
  weights::StateDict renamed;
  for (auto& [key, tensor] : state_dict) {
    std::string name = key;
    torch::Tensor value = tensor;
    std::smatch match;
    if (std::regex_match(key, match, block_pattern)) {
      const int stage = std::stoi(match[1].str()), block = std::stoi(match[2].str());
      const std::string timm_block = fmt::format("blocks.{}.{}.", stage, block);
      const auto layout = block_layout(state_dict, timm_block);
      const bool conv_bn_act = layout.parts.size() == 1;
      const std::string torchvision_block =
          efficientnet ? fmt::format("features.{}.{}.", stage + 1, block)
                       : fmt::format("features.{}.", 1 + block_index.at({stage, block}));
      const std::string rest =
          rename_in_block(match[3].str(), layout, torchvision_block, !conv_bn_act);
      if (!rest.empty()) name = rest;
    } else if (starts_with(key, "conv_stem.")) {
      name = "features.0.0." + key.substr(10);
    } else if (starts_with(key, "bn1.")) {
      name = "features.0.1." + key.substr(4);
    } else if (efficientnet && starts_with(key, "conv_head.")) {
      name = head + "0." + key.substr(10);
    } else if (efficientnet && starts_with(key, "bn2.")) {
      name = head + "1." + key.substr(4);
    } else if (efficientnet && starts_with(key, "classifier.")) {
      name = "classifier.1." + key.substr(11);
    } else if (mobilenet_v3 && starts_with(key, "conv_head.")) {
      // timm's 1x1 convolution after pooling is torchvision's first Linear.
      name = "classifier.0." + key.substr(10);
      if (value.dim() == 4) value = value.flatten(1);
    } else if (mobilenet_v3 && starts_with(key, "classifier.")) {
      name = "classifier.3." + key.substr(11);
    }
    renamed.emplace(std::move(name), std::move(value));
  }
  state_dict = std::move(renamed);
  return fmt::format("read timm's {} names (conv_stem, blocks.S.B.*, conv_head) as torchvision's",
                     efficientnet ? "EfficientNet" : "MobileNetV3");
}

}  // namespace vtl::models

#include "vtl/models/timm_names.h"

#include <regex>

#include <fmt/format.h>

namespace vtl::models {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

/// The part of a timm EfficientNet block key after "blocks.S.B." -> torchvision's after
/// "features.S+1.B.block."; empty when unknown. `inverted_residual`: the block has an
/// expansion conv (conv_pw, conv_dw, conv_pwl), else it is depthwise-separable (conv_dw,
/// conv_pw) as timm builds blocks of expansion ratio 1.
std::string block_key(const std::string& rest, bool inverted_residual) {
  // (timm module, torchvision module) in the order the block runs them.
  static const std::pair<const char*, const char*> kInvertedResidual[] = {
      {"conv_pw.", "0.0."},          {"bn1.", "0.1."},
      {"conv_dw.", "1.0."},          {"bn2.", "1.1."},
      {"se.conv_reduce.", "2.fc1."}, {"se.conv_expand.", "2.fc2."},
      {"conv_pwl.", "3.0."},         {"bn3.", "3.1."},
  };
  static const std::pair<const char*, const char*> kDepthwiseSeparable[] = {
      {"conv_dw.", "0.0."},          {"bn1.", "0.1."},     {"se.conv_reduce.", "1.fc1."},
      {"se.conv_expand.", "1.fc2."}, {"conv_pw.", "2.0."}, {"bn2.", "2.1."},
  };
  const auto rename = [&](const auto& table) -> std::string {
    for (const auto& [timm, torchvision] : table)
      if (starts_with(rest, timm)) return torchvision + rest.substr(std::string(timm).size());
    return {};
  };
  return inverted_residual ? rename(kInvertedResidual) : rename(kDepthwiseSeparable);
}

}  // namespace

std::string rename_timm_keys(const std::string& architecture, weights::StateDict& state_dict) {
  if (!starts_with(architecture, "efficientnet_b")) return {};
  if (!state_dict.count("conv_stem.weight") || !state_dict.count("blocks.0.0.conv_dw.weight"))
    return {};
  const std::regex block_pattern(R"(blocks\.(\d+)\.(\d+)\.(.*))");
  int stages = 0;
  for (const auto& [key, tensor] : state_dict) {
    std::smatch match;
    if (std::regex_match(key, match, block_pattern))
      stages = std::max(stages, std::stoi(match[1].str()) + 1);
  }
  const std::string head = fmt::format("features.{}.", stages + 1);
  weights::StateDict renamed;
  for (auto& [key, tensor] : state_dict) {
    std::string name = key;
    std::smatch match;
    if (std::regex_match(key, match, block_pattern)) {
      const std::string block = fmt::format("blocks.{}.{}.", match[1].str(), match[2].str());
      const std::string rest =
          block_key(match[3].str(), state_dict.count(block + "conv_pwl.weight") > 0);
      if (!rest.empty())
        name = fmt::format("features.{}.{}.block.{}", std::stoi(match[1].str()) + 1, match[2].str(),
                           rest);
    } else if (starts_with(key, "conv_stem.")) {
      name = "features.0.0." + key.substr(10);
    } else if (starts_with(key, "bn1.")) {
      name = "features.0.1." + key.substr(4);
    } else if (starts_with(key, "conv_head.")) {
      name = head + "0." + key.substr(10);
    } else if (starts_with(key, "bn2.")) {
      name = head + "1." + key.substr(4);
    } else if (starts_with(key, "classifier.")) {
      name = "classifier.1." + key.substr(11);
    }
    renamed.emplace(std::move(name), std::move(tensor));
  }
  state_dict = std::move(renamed);
  return "read timm's EfficientNet names (conv_stem, blocks.S.B.*, conv_head) as torchvision's";
}

}  // namespace vtl::models

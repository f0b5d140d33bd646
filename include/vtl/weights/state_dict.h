#pragma once
// A state dict: parameter/buffer name (torchvision's key) -> tensor, as stored in a
// weights file. Tensors are CPU, contiguous, and own their memory.

#include <map>
#include <string>

#include <torch/torch.h>

namespace vtl::weights {

using StateDict = std::map<std::string, torch::Tensor>;

/// What a reader found out about a weights file besides the tensors.
struct WeightsFileInfo {
  /// "pth (zip)", "pth (legacy)" or "safetensors".
  std::string format;
  /// Non-empty when the tensors were found under a key of a checkpoint dict, e.g.
  /// {"state_dict": {...}} or {"model": {...}}.
  std::string unwrapped_key;
  /// True when every key started with "module." (a DataParallel checkpoint) and that
  /// prefix was removed.
  bool stripped_module_prefix = false;
  /// safetensors' "__metadata__" (string -> string); empty for .pth files.
  std::map<std::string, std::string> metadata;
};

}  // namespace vtl::weights

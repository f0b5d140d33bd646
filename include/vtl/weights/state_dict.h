#pragma once
// A state dict: parameter/buffer name (torchvision's key) -> tensor, as stored in a
// weights file. Tensors are CPU, contiguous, and own their memory.

#include <map>
#include <string>

#include <torch/torch.h>

namespace vtl::weights {

using StateDict = std::map<std::string, torch::Tensor>;

}  // namespace vtl::weights

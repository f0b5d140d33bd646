#pragma once
// Where a model computes: the device names the command line accepts.

#include <string>

#include <torch/torch.h>

namespace vtl::models {

/// "cpu", "cuda" (the first visible GPU; CUDA_VISIBLE_DEVICES chooses which) or "cuda:N".
/// Throws vtl::Error naming the option when the name is unknown, when this build of
/// LibTorch sees no CUDA device, or when N is not below the number of visible GPUs.
torch::Device parse_device(const std::string& name);

}  // namespace vtl::models

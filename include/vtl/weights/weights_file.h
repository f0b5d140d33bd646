#pragma once
// One entry point for any weights file: the format is told by the content, not the name.

#include <filesystem>

#include "vtl/weights/state_dict.h"

namespace vtl::weights {

/// Loads a torch.save file (zip or legacy) or a safetensors file, whatever its extension.
/// Throws vtl::Error naming the file when it is neither or is malformed.
StateDict load_weights_file(const std::filesystem::path& path, WeightsFileInfo* info = nullptr);

}  // namespace vtl::weights

#pragma once
// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {str: str}}, then the tensor bytes (offsets relative to their start).

#include <filesystem>
#include <map>
#include <string>

#include "vtl/weights/state_dict.h"

namespace vtl::weights {

/// Reads a safetensors file. The header is validated (known dtypes F64/F32/F16/BF16/I64/
/// I32/I16/I8/U8/BOOL, non-negative shapes, offsets inside the data and not overlapping,
/// byte counts matching shapes); violations throw vtl::Error naming the file and tensor.
StateDict load_safetensors(const std::filesystem::path& path, WeightsFileInfo* info = nullptr);

/// Writes `state_dict` (CPU or not; any layout) atomically: keys in sorted order, data
/// contiguous and little-endian, header padded to 8 bytes. Only string metadata.
void save_safetensors(const std::filesystem::path& path, const StateDict& state_dict,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace vtl::weights

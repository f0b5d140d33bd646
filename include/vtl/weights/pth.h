#pragma once
// Reader of PyTorch `.pth` / `.pt` state-dict files written by torch.save: the zip format
// (torch >= 1.6: <name>/data.pkl + <name>/data/<key>) and the legacy format
// (`_use_new_zipfile_serialization=False`: magic, protocol and sys-info pickles, the main
// pickle, the storage key list and the raw storages).
//
// The file is never trusted: pickles go through a restricted unpickler that builds values
// and executes nothing; a global other than those a state dict needs (e.g. os.system) is
// refused with a vtl::Error naming it; every offset and length is bounds-checked.

#include <filesystem>

#include "vtl/weights/state_dict.h"

namespace vtl::weights {

/// Loads the state dict of a torch.save file. Accepts an (Ordered)dict of tensors or a
/// checkpoint dict holding one under "state_dict", "model_state_dict", "model", "module",
/// "net" or "state_dict_ema" (unwrapped; `info` says which), float32/64, float16,
/// bfloat16 and integer storages, shared storages and strided views (each returned
/// tensor is contiguous and owns its memory). Throws vtl::Error naming the file.
StateDict load_pth(const std::filesystem::path& path, WeightsFileInfo* info = nullptr);

}  // namespace vtl::weights

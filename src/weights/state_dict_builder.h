#pragma once
// Turns the unpickled top-level value of a .pth file into a StateDict: finds the dict of
// tensors (unwrapping checkpoint dicts), copies every view out of its storage.

#include <string>

#include "unpickler.h"
#include "vtl/weights/state_dict.h"

namespace vtl::weights::detail {

/// `file` is used in error messages. Every storage referenced must have its data attached.
StateDict build_state_dict(const Value& top, const std::string& file, WeightsFileInfo* info);

/// Removes a "module." prefix present on every key (DataParallel checkpoints); returns
/// whether it did.
bool strip_module_prefix(StateDict& state_dict);

}  // namespace vtl::weights::detail

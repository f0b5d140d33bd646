#pragma once
// Process-wide runtime settings: thread count and the vtl home folder.

#include <filesystem>
#include <string>

namespace vtl {

/// Sets LibTorch's intra-op thread count. `threads <= 0` means "one per hardware
/// thread" (Debian's LibTorch otherwise starts with 1, where convolutions take a path
/// ~8x slower). Returns the count in effect. Process-wide: call once at start-up, before
/// other threads use LibTorch.
int configure_threads(int threads = 0);

/// The folder for downloaded weights and caches: `$VTL_HOME`, else `~/.cache/vtl`.
std::filesystem::path vtl_home();

/// The folder of vtl's bundled data files (ImageNet class names, sample images):
/// `$VTL_DATA_DIR`, else the installed share folder, else the source tree's `data/`.
std::filesystem::path data_dir();

}  // namespace vtl

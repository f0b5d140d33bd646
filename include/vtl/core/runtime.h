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

/// The folder of vtl's bundled data files (weights catalogue, ImageNet class names):
/// `$VTL_DATA_DIR` when set; else the first that holds them of the `data/` of the source
/// tree vtl was built from and `../share/vtl` beside the running program's folder; else
/// `share/vtl` under the install prefix vtl was configured with.
std::filesystem::path data_dir();

}  // namespace vtl

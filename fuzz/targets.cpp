#include "targets.h"

namespace vtl::fuzz {

const std::vector<FuzzTarget>& fuzz_targets() {
  static const std::vector<FuzzTarget> targets = {
    {"pth", fuzz_pth},
    {"safetensors", fuzz_safetensors},
    {"npy", fuzz_npy},
    {"json", fuzz_json},
    {"csv", fuzz_csv},
    {"image", fuzz_image},
#if defined(VTL_HAVE_SERVE)
    {"upload", fuzz_upload},
#endif
  };
  return targets;
}

const FuzzTarget* find_fuzz_target(std::string_view name) {
  for (const auto& target : fuzz_targets()) {
    if (name == target.name) return &target;
  }
  return nullptr;
}

}  // namespace vtl::fuzz

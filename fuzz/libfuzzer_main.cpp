// vtl_fuzz: libFuzzer entry point for every target in targets.h. The target is named by
// the environment variable VTL_FUZZ_TARGET, e.g.
//   VTL_FUZZ_TARGET=npy build-fuzz/fuzz/vtl_fuzz fuzz/corpus/npy
// (scripts/fuzz.sh runs a campaign over all of them).

#include <cstdio>
#include <cstdlib>

#include "targets.h"

namespace {

const vtl::fuzz::FuzzTarget* chosen_target() {
  static const vtl::fuzz::FuzzTarget* target = [] {
    const char* name = std::getenv("VTL_FUZZ_TARGET");
    const auto* found = name ? vtl::fuzz::find_fuzz_target(name) : nullptr;
    if (!found) {
      std::fprintf(stderr, "vtl_fuzz: set VTL_FUZZ_TARGET to one of:");
      for (const auto& t : vtl::fuzz::fuzz_targets()) std::fprintf(stderr, " %s", t.name);
      std::fprintf(stderr, " (got %s)\n", name ? name : "nothing");
      std::exit(2);
    }
    return found;
  }();
  return target;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  chosen_target();  // refuse to start without a valid target
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Inputs the parser accepts are kept in the corpus; a rejection is a normal answer.
  chosen_target()->run(data, size);
  return 0;
}

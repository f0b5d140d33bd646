#include "input_file.h"
#include "targets.h"
#include "vtl/embed/npy.h"

namespace vtl::fuzz {

Outcome fuzz_npy(const uint8_t* data, size_t size) {
  const auto path = write_input("input.npy", data, size);
  return accept_or_reject([&] { embed::read_npy(path); });
}

}  // namespace vtl::fuzz

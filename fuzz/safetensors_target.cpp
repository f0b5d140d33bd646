#include "input_file.h"
#include "targets.h"
#include "vtl/weights/safetensors.h"

namespace vtl::fuzz {

Outcome fuzz_safetensors(const uint8_t* data, size_t size) {
  const auto path = write_input("input.safetensors", data, size);
  return accept_or_reject([&] { weights::load_safetensors(path); });
}

}  // namespace vtl::fuzz

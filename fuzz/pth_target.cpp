#include "input_file.h"
#include "targets.h"
#include "vtl/weights/pth.h"

namespace vtl::fuzz {

Outcome fuzz_pth(const uint8_t* data, size_t size) {
  const auto path = write_input("input.pth", data, size);
  return accept_or_reject([&] { weights::load_pth(path); });
}

}  // namespace vtl::fuzz

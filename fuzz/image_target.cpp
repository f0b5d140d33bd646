#include <string>

#include "targets.h"
#include "vtl/data/image.h"

namespace vtl::fuzz {

Outcome fuzz_image(const uint8_t* data, size_t size) {
  data::DecodeOptions options;
  options.max_pixels = 4'000'000;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  return accept_or_reject([&] { data::decode_image_rgb(bytes, "fuzz-input", options); });
}

}  // namespace vtl::fuzz

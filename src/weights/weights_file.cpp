#include "vtl/weights/weights_file.h"

#include <fstream>

#include "vtl/core/error.h"
#include "vtl/weights/pth.h"
#include "vtl/weights/safetensors.h"

namespace vtl::weights {

StateDict load_weights_file(const std::filesystem::path& path, WeightsFileInfo* info) {
  std::ifstream in(path, std::ios::binary);
  VTL_CHECK(in && std::filesystem::is_regular_file(path), "cannot read weights file {}: {}",
            path.string(), std::filesystem::exists(path) ? "not a readable file" : "no such file");
  unsigned char head[9] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const auto got = in.gcount();
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
    return load_pth(path, info);
  }
  if (got >= 2 && head[0] == 0x80) return load_pth(path, info);
  if (got == 9 && head[8] == '{') return load_safetensors(path, info);
  fail("{}: not a weights file: expected a PyTorch .pth (zip or pickle) or a safetensors file",
       path.string());
}

}  // namespace vtl::weights

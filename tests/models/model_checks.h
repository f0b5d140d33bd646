#pragma once
// Structural checks shared by the model-family tests: parameter counts and an exact
// fingerprint of the state_dict key set with every shape (compared with numbers computed
// once from torchvision/timm).

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace vtl::models {

inline int64_t count_parameters(torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

/// Every state_dict entry (parameters and buffers) as "key d0xd1x..." lines, sorted.
inline std::vector<std::string> state_dict_lines(torch::nn::Module& module) {
  std::vector<std::string> lines;
  auto add = [&](const std::string& key, const torch::Tensor& t) {
    std::string line = key + " ";
    for (int64_t d = 0; d < t.dim(); ++d) line += (d ? "x" : "") + std::to_string(t.size(d));
    lines.push_back(line);
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// FNV-1a 64 of the sorted "key shape\n" lines: equal iff the key set and every shape match.
inline uint64_t fingerprint(const std::vector<std::string>& lines) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& line : lines) {
    for (unsigned char c : line + "\n") {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

inline bool has_key(const std::vector<std::string>& lines, const std::string& key_and_shape) {
  return std::find(lines.begin(), lines.end(), key_and_shape) != lines.end();
}

}  // namespace vtl::models

#pragma once
// How images must be prepared for a set of weights (timm's pretrained_cfg, torchvision's
// transforms preset). Plain data: carried by the weights catalogue and model folders,
// applied by vtl/data.

#include <array>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace vtl {

struct Preprocessing {
  /// Shorter side is resized to this many pixels (torchvision's Resize(int)).
  int resize = 256;
  /// Then a centred square of this side is cut out; it is the network's input size.
  int crop = 224;
  /// Per-channel mean and std of RGB values scaled to [0, 1].
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  /// "bilinear" or "bicubic" (torchvision's InterpolationMode names).
  std::string interpolation = "bilinear";
};

nlohmann::json to_json(const Preprocessing& preprocessing);
/// Missing fields keep their defaults; wrong types throw vtl::Error.
Preprocessing preprocessing_from_json(const nlohmann::json& json);

}  // namespace vtl

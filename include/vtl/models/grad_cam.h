#pragma once
// Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class lies.
//
//   auto cam = vtl::models::grad_cam(
//       [&](const torch::Tensor& x) { return model->base->forward_features(x); },
//       [&](const torch::Tensor& map) { return model->forward_head(map.mean({2, 3})); },
//       images);
//   // cam.heatmaps[i]: [h, w] in [0, 1], h = H / 32 for every family here
//
// The gradient of the class's logit with respect to the last feature map, averaged over
// its positions, weighs the map's channels; the ReLU of their weighted sum is the heatmap.
// For a global-average-pooled linear head (vtl's transfer models) this equals the class
// activation map of Zhou et al. (2016), W_k . A, up to a positive factor.

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

namespace vtl::models {

struct GradCamResult {
  torch::Tensor heatmaps;        ///< float32 [N, h, w], each scaled to max 1 (all 0: no evidence)
  torch::Tensor logits;          ///< float32 [N, K]
  std::vector<int64_t> classes;  ///< the class explained for each image
};

/// `feature_map`: images [N,3,H,W] -> last feature map [N,C,h,w]; `head`: that map ->
/// logits [N,K] (the rest of the network). `classes`: the class to explain per image;
/// empty: each image's predicted class. Runs the network once (autograd only through the
/// head); the model's parameters are not changed and get no gradients.
GradCamResult grad_cam(const std::function<torch::Tensor(const torch::Tensor&)>& feature_map,
                       const std::function<torch::Tensor(const torch::Tensor&)>& head,
                       const torch::Tensor& images, std::vector<int64_t> classes = {});

}  // namespace vtl::models

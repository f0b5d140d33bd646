#include "vtl/models/grad_cam.h"

#include "vtl/core/error.h"

namespace vtl::models {

GradCamResult grad_cam(const std::function<torch::Tensor(const torch::Tensor&)>& feature_map,
                       const std::function<torch::Tensor(const torch::Tensor&)>& head,
                       const torch::Tensor& images, std::vector<int64_t> classes) {
  VTL_CHECK(images.dim() == 4, "Grad-CAM: images [N,3,H,W] expected, got {} dimensions",
            images.dim());
  torch::Tensor map;
  {
    torch::NoGradGuard no_grad;  // nothing before the map needs a gradient
    map = feature_map(images).to(torch::kFloat32);
  }
  VTL_CHECK(map.dim() == 4, "Grad-CAM: the feature map must be [N,C,h,w], got {} dimensions",
            map.dim());
  map = map.detach().requires_grad_(true);
  torch::Tensor logits;
  {
    torch::AutoGradMode grad(true);
    logits = head(map).to(torch::kFloat32);
  }
  const int64_t n = images.size(0), k = logits.size(1);
  if (classes.empty()) {
    const auto predicted = logits.argmax(1).cpu();
    for (int64_t i = 0; i < n; ++i) classes.push_back(predicted[i].item<int64_t>());
  }
  VTL_CHECK(int64_t(classes.size()) == n, "Grad-CAM: {} classes for {} images", classes.size(), n);
  for (int64_t c : classes)
    VTL_CHECK(c >= 0 && c < k, "Grad-CAM: class {} is not one of the {} outputs", c, k);
  const auto index = torch::tensor(classes, torch::kInt64).to(logits.device()).unsqueeze(1);
  // Images are independent: the sum's gradient is each image's own.
  const auto score = logits.gather(1, index).sum();
  const auto gradient = torch::autograd::grad({score}, {map})[0];

  torch::NoGradGuard no_grad;
  const auto weights = gradient.mean({2, 3}, /*keepdim=*/true);  // [N,C,1,1]
  auto heatmaps = torch::relu((weights * map.detach()).sum(1));  // [N,h,w]
  const auto peak = std::get<0>(heatmaps.flatten(1).max(1)).clamp_min(1e-12).view({n, 1, 1});
  heatmaps = heatmaps / peak;
  return {heatmaps.cpu(), logits.detach().cpu(), classes};
}

}  // namespace vtl::models

#include "vtl/data/preprocess.h"

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "vtl/core/error.h"
#include "vtl/data/image.h"

namespace vtl::data {

torch::Tensor to_tensor(const cv::Mat& rgb) {
  VTL_CHECK(rgb.type() == CV_8UC3, "to_tensor expects an 8-bit RGB image");
  cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
  auto hwc =
      torch::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).to(torch::kFloat32).div_(255.0f).contiguous();
}

torch::Tensor normalize(torch::Tensor x, const Preprocessing& p) {
  auto options = torch::TensorOptions().dtype(x.scalar_type()).device(x.device());
  auto mean = torch::tensor({p.mean[0], p.mean[1], p.mean[2]}, options);
  auto std = torch::tensor({p.std[0], p.std[1], p.std[2]}, options);
  const auto shape =
      x.dim() == 4 ? std::vector<int64_t>{1, 3, 1, 1} : std::vector<int64_t>{3, 1, 1};
  return x.sub_(mean.view(shape)).div_(std.view(shape));
}

cv::Size shorter_side_resized(cv::Size size, int resize) {
  const int64_t short_side = std::min(size.width, size.height);
  const auto longer = [&](int64_t side) {
    return side == short_side ? resize : int(side * resize / short_side);
  };
  if (size.width <= size.height) return {resize, std::max(1, longer(size.height))};
  return {std::max(1, longer(size.width)), resize};
}

cv::Mat resize_center_crop(const cv::Mat& rgb, const Preprocessing& p) {
  const cv::Size size = shorter_side_resized(rgb.size(), p.resize);
  // Shrinking uses area averaging (close to PIL's antialiased filters); enlarging uses the
  // preset's interpolation.
  const bool shrinking = size.width < rgb.cols || size.height < rgb.rows;
  const int interpolation = shrinking                      ? cv::INTER_AREA
                            : p.interpolation == "bicubic" ? cv::INTER_CUBIC
                                                           : cv::INTER_LINEAR;
  cv::Mat resized = rgb;
  if (size != rgb.size()) cv::resize(rgb, resized, size, 0, 0, interpolation);
  const int crop = std::min({p.crop, resized.rows, resized.cols});
  // torchvision: int(round((side - crop) / 2.0)), Python's round (ties to even).
  const int top = static_cast<int>(std::nearbyint((resized.rows - crop) / 2.0));
  const int left = static_cast<int>(std::nearbyint((resized.cols - crop) / 2.0));
  cv::Mat out = resized(cv::Rect(left, top, crop, crop));
  if (crop != p.crop) cv::resize(out, out, cv::Size(p.crop, p.crop), 0, 0, cv::INTER_LINEAR);
  return out.clone();
}

torch::Tensor eval_transform(const cv::Mat& rgb, const Preprocessing& p) {
  return normalize(to_tensor(resize_center_crop(rgb, p)), p);
}

torch::Tensor stack_batch(const std::vector<torch::Tensor>& images) {
  VTL_CHECK(!images.empty(), "cannot make a batch of zero images");
  return torch::stack(images);
}

torch::Tensor load_eval_input(const std::filesystem::path& path,
                              const Preprocessing& preprocessing) {
  DecodeOptions decode;
  decode.min_short_side = preprocessing.resize;  // no more pixels decoded than resized to
  return eval_transform(load_image_rgb(path, decode), preprocessing);
}

}  // namespace vtl::data

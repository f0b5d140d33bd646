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

torch::Tensor eval_transform(const cv::Mat& rgb, const Preprocessing& p) {
  // Resize the shorter side to p.resize keeping the aspect ratio (torchvision rounds the
  // longer side down), then cut the centred p.crop square.
  const int short_side = std::min(rgb.rows, rgb.cols);
  const double scale = double(p.resize) / short_side;
  const int width = rgb.cols <= rgb.rows ? p.resize : int(rgb.cols * scale);
  const int height = rgb.rows < rgb.cols ? p.resize : int(rgb.rows * scale);
  cv::Mat resized;
  // Shrinking uses area averaging (close to PIL's antialiased filters); enlarging uses the
  // preset's interpolation.
  const int interpolation = scale < 1.0                    ? cv::INTER_AREA
                            : p.interpolation == "bicubic" ? cv::INTER_CUBIC
                                                           : cv::INTER_LINEAR;
  cv::resize(rgb, resized, cv::Size(std::max(width, 1), std::max(height, 1)), 0, 0, interpolation);
  const int crop = std::min({p.crop, resized.rows, resized.cols});
  const int top = static_cast<int>(std::round((resized.rows - crop) / 2.0));
  const int left = static_cast<int>(std::round((resized.cols - crop) / 2.0));
  cv::Mat cropped = resized(cv::Rect(left, top, crop, crop));
  if (crop != p.crop)
    cv::resize(cropped, cropped, cv::Size(p.crop, p.crop), 0, 0, cv::INTER_LINEAR);
  return normalize(to_tensor(cropped), p);
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

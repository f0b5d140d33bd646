#include "vtl/data/transforms.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "vtl/core/error.h"
#include "vtl/data/preprocess.h"

namespace vtl::data {
namespace {

double uniform(std::mt19937_64& rng, double low, double high) {
  return std::uniform_real_distribution<double>(low, high)(rng);
}

/// torchvision's RandomResizedCrop.get_params: up to 10 tries of a random area/ratio,
/// falling back to the largest centred crop with a clamped ratio.
cv::Rect random_resized_crop_box(int width, int height, const AugmentOptions& o,
                                 std::mt19937_64& rng) {
  const double area = double(width) * height;
  const double log_min = std::log(o.ratio_min), log_max = std::log(o.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, o.scale_min, o.scale_max);
    const double ratio = std::exp(uniform(rng, log_min, log_max));
    const int w = static_cast<int>(std::lround(std::sqrt(target_area * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target_area / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int x = std::uniform_int_distribution<int>(0, width - w)(rng);
      const int y = std::uniform_int_distribution<int>(0, height - h)(rng);
      return {x, y, w, h};
    }
  }
  const double in_ratio = double(width) / height;
  int w = width, h = height;
  if (in_ratio < o.ratio_min) {
    h = static_cast<int>(std::lround(w / o.ratio_min));
  } else if (in_ratio > o.ratio_max) {
    w = static_cast<int>(std::lround(h * o.ratio_max));
  }
  w = std::clamp(w, 1, width);
  h = std::clamp(h, 1, height);
  return {(width - w) / 2, (height - h) / 2, w, h};
}

}  // namespace

AugmentOptions AugmentOptions::none() {
  AugmentOptions o;
  o.random_resized_crop = false;
  o.horizontal_flip = false;
  o.rotation = o.zoom = o.translate = 0.0;
  o.brightness = o.contrast = o.saturation = o.hue = 0.0;
  o.mixup_alpha = o.cutmix_alpha = 0.0;
  return o;
}

bool AugmentOptions::any_per_image() const {
  return random_resized_crop || horizontal_flip || rotation > 0 || zoom > 0 || translate > 0 ||
         brightness > 0 || contrast > 0 || saturation > 0 || hue > 0;
}

torch::Tensor train_transform(const cv::Mat& rgb, const Preprocessing& p, const AugmentOptions& o,
                              std::mt19937_64& rng) {
  VTL_CHECK(rgb.type() == CV_8UC3 && !rgb.empty(), "train_transform expects an 8-bit RGB image");
  if (!o.any_per_image()) return eval_transform(rgb, p);
  const int size = p.crop;
  cv::Mat image;
  if (o.random_resized_crop) {
    const cv::Rect box = random_resized_crop_box(rgb.cols, rgb.rows, o, rng);
    const bool shrinking = box.width > size && box.height > size;
    cv::resize(rgb(box), image, cv::Size(size, size), 0, 0,
               shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  } else {
    image = resize_center_crop(rgb, p);
  }

  // Rotation, zoom and translation as one affine warp about the centre; the border is
  // reflected (Keras' default fill_mode).
  const double angle = o.rotation > 0 ? uniform(rng, -o.rotation, o.rotation) : 0.0;
  const double zoom = o.zoom > 0 ? uniform(rng, 1.0 - o.zoom, 1.0 + o.zoom) : 1.0;
  const double tx = o.translate > 0 ? uniform(rng, -o.translate, o.translate) * size : 0.0;
  const double ty = o.translate > 0 ? uniform(rng, -o.translate, o.translate) * size : 0.0;
  if (angle != 0.0 || zoom != 1.0 || tx != 0.0 || ty != 0.0) {
    cv::Mat matrix = cv::getRotationMatrix2D(cv::Point2f(size / 2.0f, size / 2.0f), angle, zoom);
    matrix.at<double>(0, 2) += tx;
    matrix.at<double>(1, 2) += ty;
    cv::warpAffine(image, image, matrix, image.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  }
  if (o.horizontal_flip && std::bernoulli_distribution(0.5)(rng)) cv::flip(image, image, 1);

  cv::Mat pixels;
  image.convertTo(pixels, CV_32FC3, 1.0 / 255.0);
  // ColorJitter: brightness, contrast, saturation, hue, each with its own factor.
  if (o.brightness > 0) pixels *= uniform(rng, 1.0 - o.brightness, 1.0 + o.brightness);
  if (o.contrast > 0) {
    const double factor = uniform(rng, 1.0 - o.contrast, 1.0 + o.contrast);
    cv::Mat gray;
    cv::cvtColor(pixels, gray, cv::COLOR_RGB2GRAY);
    const double mean = cv::mean(gray)[0];
    pixels = pixels * factor + cv::Scalar::all(mean * (1.0 - factor));
  }
  if (o.saturation > 0) {
    const double factor = uniform(rng, 1.0 - o.saturation, 1.0 + o.saturation);
    cv::Mat gray, gray3;
    cv::cvtColor(pixels, gray, cv::COLOR_RGB2GRAY);
    cv::cvtColor(gray, gray3, cv::COLOR_GRAY2RGB);
    cv::addWeighted(pixels, factor, gray3, 1.0 - factor, 0.0, pixels);
  }
  cv::min(cv::max(pixels, 0.0), 1.0, pixels);
  if (o.hue > 0) {
    const double shift = uniform(rng, -o.hue, o.hue) * 360.0;
    cv::Mat hsv;
    cv::cvtColor(pixels, hsv, cv::COLOR_RGB2HSV);  // float: H in [0, 360)
    for (int y = 0; y < hsv.rows; ++y) {
      auto* row = hsv.ptr<cv::Vec3f>(y);
      for (int x = 0; x < hsv.cols; ++x) {
        float h = row[x][0] + static_cast<float>(shift);
        row[x][0] = h < 0 ? h + 360.0f : (h >= 360.0f ? h - 360.0f : h);
      }
    }
    cv::cvtColor(hsv, pixels, cv::COLOR_HSV2RGB);
  }
  cv::Mat contiguous = pixels.isContinuous() ? pixels : pixels.clone();
  auto tensor = torch::from_blob(contiguous.data, {size, size, 3}, torch::kFloat32)
                    .permute({2, 0, 1})
                    .contiguous()
                    .clamp_(0.0, 1.0);
  return normalize(tensor, p);
}

void mix_batch(torch::Tensor& images, torch::Tensor& targets, const AugmentOptions& o,
               std::mt19937_64& rng) {
  const bool mixup = o.mixup_alpha > 0, cutmix = o.cutmix_alpha > 0;
  if ((!mixup && !cutmix) || images.size(0) < 2) return;
  const bool use_cutmix = cutmix && (!mixup || std::bernoulli_distribution(0.5)(rng));
  const double alpha = use_cutmix ? o.cutmix_alpha : o.mixup_alpha;
  std::gamma_distribution<double> gamma(alpha, 1.0);
  const double a = gamma(rng), b = gamma(rng);
  double lambda = a / (a + b);
  const int64_t n = images.size(0);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  auto index = torch::tensor(order, torch::kInt64).to(images.device());
  auto other_images = images.index_select(0, index);
  auto other_targets = targets.index_select(0, index);
  if (use_cutmix) {
    const int64_t h = images.size(2), w = images.size(3);
    const double cut = std::sqrt(1.0 - lambda);
    const int64_t ch = static_cast<int64_t>(h * cut), cw = static_cast<int64_t>(w * cut);
    const int64_t cy = std::uniform_int_distribution<int64_t>(0, h - 1)(rng);
    const int64_t cx = std::uniform_int_distribution<int64_t>(0, w - 1)(rng);
    const int64_t y0 = std::clamp<int64_t>(cy - ch / 2, 0, h),
                  y1 = std::clamp<int64_t>(cy + ch / 2, 0, h);
    const int64_t x0 = std::clamp<int64_t>(cx - cw / 2, 0, w),
                  x1 = std::clamp<int64_t>(cx + cw / 2, 0, w);
    using torch::indexing::Slice;
    images = images.clone();
    images.index_put_({Slice(), Slice(), Slice(y0, y1), Slice(x0, x1)},
                      other_images.index({Slice(), Slice(), Slice(y0, y1), Slice(x0, x1)}));
    lambda = 1.0 - double((y1 - y0) * (x1 - x0)) / double(h * w);
  } else {
    images = images * lambda + other_images * (1.0 - lambda);
  }
  targets = targets * lambda + other_targets * (1.0 - lambda);
}

}  // namespace vtl::data

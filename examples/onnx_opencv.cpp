// Deployment without vtl or LibTorch: classify images with a model that `vtl export` wrote,
// using only OpenCV's DNN module and the sidecar JSON (MODEL.onnx.json) that describes its
// input.
//
//   vtl export run/ --out model.onnx
//   ./onnx_opencv model.onnx photo.jpg more.png ...
//
// For each image: decode (transparency over white, as vtl does), resize the shorter side,
// cut the centre square, scale to [0, 1], subtract the mean, divide by the standard
// deviation, and run the network; prints the three most likely classes.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace {

/// The preprocessing of the sidecar's "input" object.
struct Preprocessing {
  int resize = 256, crop = 224;
  cv::Scalar mean, std;
  bool bicubic = false;
};

/// 16-bit samples to 8 bits as vtl's decoder does: by 1/257, except colour (or alpha)
/// samples that all fit in 8 bits, which are 8-bit data kept as they are.
cv::Mat eight_bit(const cv::Mat& image) {
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  std::vector<double> largest(planes.size());
  for (size_t i = 0; i < planes.size(); ++i) cv::minMaxLoc(planes[i], nullptr, &largest[i]);
  const size_t colour_planes = planes.size() >= 3 ? 3 : 1;
  const double colour_largest = *std::max_element(largest.begin(), largest.begin() + colour_planes);
  for (size_t i = 0; i < planes.size(); ++i) {
    const double plane_largest = i < colour_planes ? colour_largest : largest[i];
    planes[i].convertTo(planes[i], CV_8U, plane_largest <= 255 ? 1.0 : 1.0 / 257.0);
  }
  cv::Mat merged;
  cv::merge(planes, merged);
  return merged;
}

/// 8-bit RGB; transparent pixels composited over white, as vtl's decoder does.
cv::Mat read_rgb(const std::string& path) {
  cv::Mat image = cv::imread(path, cv::IMREAD_UNCHANGED);
  if (image.empty()) return image;
  const bool sixteen_bit = image.depth() == CV_16U;
  if (sixteen_bit) image = eight_bit(image);
  if (image.channels() == 2) cv::cvtColor(image, image, cv::COLOR_GRAY2BGRA, 0);
  if (image.channels() == 4) {
    cv::Mat rgb(image.size(), CV_8UC3);
    image.forEach<cv::Vec4b>([&](const cv::Vec4b& bgra, const int* at) {
      const int alpha = bgra[3];
      for (int c = 0; c < 3; ++c)
        rgb.at<cv::Vec3b>(at[0], at[1])[2 - c] =
            static_cast<uchar>((bgra[c] * alpha + 255 * (255 - alpha) + 127) / 255);
    });
    return rgb;
  }
  if (sixteen_bit) {  // PNG or TIFF: no EXIF orientation to apply
    cv::cvtColor(image, image, image.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
    return image;
  }
  image = cv::imread(path, cv::IMREAD_COLOR);  // applies the EXIF orientation
  cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  return image;
}

/// [1, 3, crop, crop] float32 blob of one image.
cv::Mat to_blob(const cv::Mat& rgb, const Preprocessing& p) {
  // torchvision's Resize: the longer side is resize * long / short, rounded down.
  const int64_t short_side = std::min(rgb.cols, rgb.rows);
  const int width =
      rgb.cols <= rgb.rows ? p.resize : int(rgb.cols * int64_t(p.resize) / short_side);
  const int height =
      rgb.rows < rgb.cols ? p.resize : int(rgb.rows * int64_t(p.resize) / short_side);
  const int interpolation = p.resize < short_side ? cv::INTER_AREA
                            : p.bicubic           ? cv::INTER_CUBIC
                                                  : cv::INTER_LINEAR;
  cv::Mat resized;
  cv::resize(rgb, resized, cv::Size(std::max(width, 1), std::max(height, 1)), 0, 0, interpolation);
  const int crop = std::min({p.crop, resized.rows, resized.cols});
  // CenterCrop's offsets: Python's round, ties to even.
  const int top = int(std::nearbyint((resized.rows - crop) / 2.0));
  const int left = int(std::nearbyint((resized.cols - crop) / 2.0));
  cv::Mat square = resized(cv::Rect(left, top, crop, crop));
  if (crop != p.crop) cv::resize(square, square, cv::Size(p.crop, p.crop), 0, 0, cv::INTER_LINEAR);
  cv::Mat pixels;
  square.convertTo(pixels, CV_32FC3, 1.0 / 255.0);
  pixels = (pixels - p.mean) / p.std;
  return cv::dnn::blobFromImage(pixels);  // HWC -> NCHW, no further scaling
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: onnx_opencv MODEL.onnx IMAGE...\n";
    return 2;
  }
  const std::string model = argv[1];
  std::ifstream sidecar_file(model + ".json");
  if (!sidecar_file) {
    std::cerr << model << ".json: not found (written by `vtl export` beside the model)\n";
    return 1;
  }
  const auto sidecar = nlohmann::json::parse(sidecar_file);
  const auto& input = sidecar.at("input");
  const auto& pre = input.at("preprocessing");
  Preprocessing p;
  p.resize = pre.at("resize");
  p.crop = pre.at("crop");
  p.mean = cv::Scalar(pre["mean"][0], pre["mean"][1], pre["mean"][2]);
  p.std = cv::Scalar(pre["std"][0], pre["std"][1], pre["std"][2]);
  p.bicubic = pre.value("interpolation", "bilinear") == "bicubic";
  const auto classes = sidecar.value("class_names", std::vector<std::string>{});
  const std::string output = sidecar.at("outputs").back();  // probabilities when present

  cv::dnn::Net net = cv::dnn::readNetFromONNX(model);
  std::cout << model << ": " << sidecar.value("architecture", "") << ", input " << p.crop << "x"
            << p.crop << ", output " << output << "\n";
  int failed = 0;
  for (int i = 2; i < argc; ++i) {
    const cv::Mat rgb = read_rgb(argv[i]);
    if (rgb.empty()) {
      std::cerr << argv[i] << ": not a readable image\n";
      ++failed;
      continue;
    }
    net.setInput(to_blob(rgb, p), input.value("name", "images"));
    const cv::Mat scores = net.forward(output).reshape(1, 1);
    std::vector<int> order(scores.cols);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return scores.at<float>(a) > scores.at<float>(b); });
    std::cout << argv[i];
    for (int k = 0; k < std::min<int>(3, scores.cols); ++k) {
      const int c = order[k];
      std::cout << "\t" << (c < int(classes.size()) ? classes[c] : std::to_string(c)) << " "
                << scores.at<float>(c);
    }
    std::cout << "\n";
  }
  return failed == 0 ? 0 : 1;
}

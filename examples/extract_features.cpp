// A feature extractor that outputs the avg_pool layer, run on one image as an OpenCV Mat:
//
//   model = ResNet50(weights="imagenet")
//   extractor = Model(inputs=model.input, outputs=model.get_layer("avg_pool").output)
//   img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB); img = cv2.resize(img, (224, 224))
//   features = extractor.predict(preprocess_input(img[None]))   # shape (1, 2048)
//
//   extract_features IMAGE [--model resnet50] [--weights random]
//
// The extractor applies the preprocessing that belongs to the weights (resize the shorter
// side, centre crop 224, normalize with the ImageNet mean and std); a hand-written resize
// alone forgets the normalization, and the example shows how far that moves the features.

#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <opencv2/imgproc.hpp>

#include <vtl/core/error.h>
#include <vtl/core/runtime.h>
#include <vtl/data/image.h>
#include <vtl/data/preprocess.h>
#include <vtl/embed/extractor.h>

int main(int argc, char** argv) try {
  if (argc < 2 || argc % 2 != 0) {
    std::cerr << "usage: extract_features IMAGE [--model NAME] [--weights W]\n";
    return 2;
  }
  std::map<std::string, std::string> option = {{"--model", "resnet50"}, {"--weights", "random"}};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!option.count(argv[i])) return std::cerr << "unknown option " << argv[i] << "\n", 2;
    option[argv[i]] = argv[i + 1];
  }
  vtl::configure_threads();

  // The network up to its global average pooling layer.
  vtl::embed::FeatureExtractor extractor(
      vtl::embed::load_backbone({option["--model"], option["--weights"]}), "avg_pool");

  // One image as an 8-bit RGB cv::Mat, decoded as `vtl extract` decodes files (alpha over
  // white, EXIF orientation; a file that cannot be read is a vtl::Error naming it).
  // cv::imread + COLOR_BGR2RGB also gives RGB, but drops transparency instead.
  cv::Mat image = vtl::data::load_image_rgb(argv[1], extractor.decode_options());

  // The weights' own preprocessing, then the network.
  const torch::Tensor features = extractor.embed_images({image});
  const vtl::Preprocessing& p = extractor.spec().preprocessing;
  std::printf(
      "preprocessing: resize %d, centre crop %d, mean (%.3f, %.3f, %.3f), std (%.3f, "
      "%.3f, %.3f)\n",
      p.resize, p.crop, p.mean[0], p.mean[1], p.mean[2], p.std[0], p.std[1], p.std[2]);
  std::printf("%s avg_pool features: shape (%lld, %lld)\n", extractor.spec().model.c_str(),
              static_cast<long long>(features.size(0)), static_cast<long long>(features.size(1)));

  // What a bare resize to the input size would have fed the network instead.
  cv::Mat resized;
  cv::resize(image, resized, cv::Size(p.crop, p.crop), 0, 0, cv::INTER_AREA);
  const torch::Tensor bare = extractor.embed(vtl::data::to_tensor(resized).unsqueeze(0));
  std::printf("without the normalization the features differ by %.0f%% (relative L2)\n",
              100.0 * (bare - features).norm().item<double>() / features.norm().item<double>());
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

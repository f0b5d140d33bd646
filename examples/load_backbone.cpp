// Load ResNet50 without its top for 224x224x3 input and print its feature width
// (Keras: ResNet50(weights="imagenet", include_top=False, input_shape=(224, 224, 3))).
//
//   load_backbone [[--weights] WEIGHTS]   WEIGHTS: a catalogue name (resnet50.tv_in1k, fetched with
//                             `vtl weights fetch`) or a .pth / .safetensors file; without
//                             it the base is randomly initialised.

#include <iostream>
#include <string>

#include <vtl/core/error.h>
#include <vtl/core/runtime.h>
#include <vtl/models/pretrained.h>

int main(int argc, char** argv) try {
  vtl::configure_threads();
  // `--weights W` as the other examples take it, or W alone.
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << "usage: load_backbone [[--weights] WEIGHTS]\n"
                 "  WEIGHTS: a catalogue name, a .pth or .safetensors file, or random (default)\n";
    return 0;
  }
  const bool named = argc > 1 && std::string(argv[1]) == "--weights";
  if (named && argc < 3) return std::cerr << "usage: load_backbone [[--weights] WEIGHTS]\n", 2;
  const int at = named ? 2 : 1;
  const std::string weights = argc > at ? argv[at] : "random";

  auto resnet50 = vtl::models::load_pretrained("resnet50", weights,
                                               vtl::models::ModelOptions().include_top(false));
  resnet50.model->eval();

  // One blank 224x224 RGB image through the base: the unpooled feature map.
  torch::NoGradGuard no_grad;
  const auto map = resnet50.model->forward_features(torch::zeros({1, 3, 224, 224}));
  std::cout << "resnet50 without top (weights: " << resnet50.weights
            << "): " << resnet50.model->num_features() << " features per image, feature map "
            << map.sizes() << " for a 224x224x3 input\n";
  if (weights != "random") std::cout << "weights file: " << resnet50.report.summary() << "\n";
  return 0;
} catch (const vtl::Error& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

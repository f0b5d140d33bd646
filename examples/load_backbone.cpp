// Load ResNet50 without its top for 224x224x3 input and print its feature width
// (Keras: ResNet50(weights="imagenet", include_top=False, input_shape=(224, 224, 3))).
//
//   load_backbone [WEIGHTS]   WEIGHTS: a catalogue name (resnet50.tv_in1k) or a .pth /
//                             .safetensors file; without it the base is randomly initialised.

#include <iostream>

#include <vtl/core/error.h>
#include <vtl/models/registry.h>

int main(int argc, char** argv) try {
  using vtl::models::ModelOptions;
  auto base = vtl::models::create_model("resnet50", ModelOptions().include_top(false));
  auto features = base->forward(torch::zeros({1, 3, 224, 224}));
  std::cout << "resnet50 without top: " << base->num_features() << " features per image, output "
            << features.sizes() << "\n";
  return 0;
} catch (const vtl::Error& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

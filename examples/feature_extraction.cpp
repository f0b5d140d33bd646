// Feature extraction, the first half of Keras' transfer-learning guide:
//
//   base_model = ResNet50(weights="imagenet", include_top=False)
//   base_model.trainable = False
//   x = base_model(inputs, training=False)
//   x = GlobalAveragePooling2D()(x)
//   outputs = Dense(num_classes, activation="softmax")(x)
//   model.compile(optimizer=Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
//   model.fit(train_ds, epochs=epochs, validation_data=val_ds)
//
//   feature_extraction DATA [--model resnet18] [--weights random] [--img-size 64] [--epochs 3]
//
// DATA is a class-folder tree (DATA/<class>/<image>); 20% of each class is validation data.
// --weights takes a catalogue name or a .pth / .safetensors file ("random": no weights).

#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <vtl/core/error.h>
#include <vtl/core/runtime.h>
#include <vtl/models/pretrained.h>
#include <vtl/models/transfer_model.h>
#include <vtl/train/fit.h>
#include <vtl/train/freeze.h>
#include <vtl/train/run.h>

namespace {
void print_epoch(const vtl::train::EpochMetrics& m) {
  std::printf("epoch %lld  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f\n",
              static_cast<long long>(m.epoch), m.train_loss, m.train_acc, m.val_loss, m.val_acc);
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2 || argc % 2 != 0) {
    std::cerr << "usage: feature_extraction DATA [--model NAME] [--weights W] [--img-size PX] "
                 "[--epochs N]\n";
    return 2;
  }
  std::map<std::string, std::string> option = {
      {"--model", "resnet18"}, {"--weights", "random"}, {"--img-size", "64"}, {"--epochs", "3"}};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!option.count(argv[i])) return std::cerr << "unknown option " << argv[i] << "\n", 2;
    option[argv[i]] = argv[i + 1];
  }
  vtl::configure_threads();
  torch::manual_seed(0);

  // The base without its top, and its weights' preprocessing at the chosen input size.
  auto base = vtl::models::load_pretrained(option["--model"], option["--weights"],
                                           vtl::models::ModelOptions().include_top(false));
  auto preprocessing =
      vtl::train::preset_for_size(base.preprocessing, std::stoi(option["--img-size"]));

  // Training and validation images, decoded once.
  auto images = vtl::train::load_image_folder(argv[1], preprocessing, /*val_fraction=*/0.2);
  std::cout << "classes: " << images.train.describe_counts() << "; " << images.train.samples.size()
            << " training and " << images.val.samples.size() << " validation images\n";

  // Global average pooling + dense head for N classes (softmax is part of the loss).
  vtl::models::TransferModel model(base.model, images.num_classes());
  vtl::train::freeze_base(model);  // base_model.trainable = False
  std::cout << "base frozen: " << std::boolalpha << vtl::train::base_is_frozen(model)
            << ", trainable tensors: " << vtl::train::trainable_parameters(model).size()
            << " (the new head)\n";

  // Adam + categorical cross-entropy; fit keeps the frozen base in inference mode
  // (training=False: BatchNorm uses its running statistics) and reports validation
  // accuracy after every epoch.
  auto history = vtl::train::fit(model, images,
                                 vtl::train::FitOptions()
                                     .optimizer("adam")
                                     .lr(1e-3)
                                     .epochs(std::stoll(option["--epochs"]))
                                     .on_epoch(print_epoch));
  if (!history.empty()) std::printf("final validation accuracy %.4f\n", history.back().val_acc);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

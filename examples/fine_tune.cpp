// Fine-tuning, the second half of Keras' transfer-learning guide: after the new head has
// been trained on a frozen base (feature_extraction.cpp), unfreeze the top of the base and
// train again with a very low learning rate.
//
//   base_model.trainable = True
//   for layer in base_model.layers[:-10]: layer.trainable = False
//   model.compile(optimizer=Adam(1e-5), loss="categorical_crossentropy", metrics=["accuracy"])
//   model.fit(train_ds, epochs=epochs, validation_data=val_ds)
//
//   fine_tune DATA [--model resnet18] [--weights random] [--img-size 64] [--epochs 2]
//                  [--unfreeze 10]
//
// A "layer" is a module with weights (convolution, batch norm, linear): see
// vtl/train/freeze.h for how this relates to Keras' layer count.

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
    std::cerr << "usage: fine_tune DATA [--model NAME] [--weights W] [--img-size PX] "
                 "[--epochs N] [--unfreeze N]\n";
    return 2;
  }
  std::map<std::string, std::string> option = {{"--model", "resnet18"},
                                               {"--weights", "random"},
                                               {"--img-size", "64"},
                                               {"--epochs", "2"},
                                               {"--unfreeze", "10"}};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!option.count(argv[i])) return std::cerr << "unknown option " << argv[i] << "\n", 2;
    option[argv[i]] = argv[i + 1];
  }
  vtl::configure_threads();
  torch::manual_seed(0);
  const int64_t epochs = std::stoll(option["--epochs"]);

  auto base = vtl::models::load_pretrained(option["--model"], option["--weights"],
                                           vtl::models::ModelOptions().include_top(false));
  auto images = vtl::train::load_image_folder(
      argv[1], vtl::train::preset_for_size(base.preprocessing, std::stoi(option["--img-size"])));
  vtl::models::TransferModel model(base.model, images.num_classes());

  // 1. Train the new head on the frozen base.
  vtl::train::freeze_base(model);
  std::cout << "phase 1: frozen base, trainable tensors: "
            << vtl::train::trainable_parameters(model).size() << "\n";
  vtl::train::fit(
      model, images,
      vtl::train::FitOptions().optimizer("adam").lr(1e-3).epochs(epochs).on_epoch(print_epoch));

  // 2. Unfreeze the last layers of the base; fit() builds a new optimizer over the
  //    parameters that are trainable now (the recompile), here Adam at 1e-5. BatchNorm
  //    layers keep their running statistics (train_bn false), as Keras recommends.
  const auto unfrozen = vtl::train::unfreeze_last(model, std::stoll(option["--unfreeze"]));
  std::cout << "phase 2: unfroze the last " << unfrozen.size() << " layers of the base ("
            << (unfrozen.empty() ? "none" : unfrozen.front() + " .. " + unfrozen.back())
            << "), trainable tensors: " << vtl::train::trainable_parameters(model).size() << "\n";
  auto history = vtl::train::fit(
      model, images,
      vtl::train::FitOptions().optimizer("adam").lr(1e-5).epochs(epochs).on_epoch(print_epoch));
  if (!history.empty()) std::printf("final validation accuracy %.4f\n", history.back().val_acc);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}

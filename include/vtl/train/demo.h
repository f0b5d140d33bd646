#pragma once
// The embedded demo (`vtl demo`): transfer learning on real images with no network and no
// user data. It builds two disjoint class-folder sets of symbolic links from Debian's
// openclipart-png category folders — a "pretraining" set and a small target set — gets a
// pretrained backbone (ImageNet weights from $VTL_HOME when present, otherwise it
// pretrains the backbone itself on the pretraining set), then trains on the target set
// three ways and reports validation accuracy: from scratch, frozen pretrained base
// (features), and fine-tuned (finetune).

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "vtl/train/run.h"

namespace vtl::train {

struct DemoOptions {
  std::filesystem::path clipart = "/usr/share/openclipart/png";
  std::filesystem::path work;  ///< run folders and the datasets; default $VTL_HOME/demo
  std::string model = "resnet18";
  std::vector<std::string> target_classes = {"animals", "buildings", "food", "plants",
                                             "transportation"};
  std::vector<std::string> pretrain_classes = {
      "computer", "shapes", "signs_and_symbols", "recreation", "people",
      "office",   "tools",  "geography",         "special",    "unsorted"};
  int64_t target_per_class = 80;
  int64_t pretrain_per_class = 100;
  int img_size = 64;
  int64_t pretrain_epochs = 6;
  int64_t scratch_epochs = 10;
  int64_t features_epochs = 10;
  int64_t finetune_epochs = 5;
  int workers = 2;
  uint64_t seed = 0;
  bool use_imagenet = true;  ///< use ImageNet weights when they are in $VTL_HOME
};

struct DemoResult {
  std::string backbone;  ///< where the pretrained base came from, in words
  double scratch_acc = 0, features_acc = 0, finetune_acc = 0;
  double pretrain_acc = 0;  ///< validation accuracy of the self-pretrained backbone (if any)
  int64_t target_train = 0, target_val = 0;
  double seconds = 0;
  std::filesystem::path work;
};

DemoResult run_demo(const DemoOptions& options,
                    const std::function<void(const std::string&)>& log = {});

}  // namespace vtl::train

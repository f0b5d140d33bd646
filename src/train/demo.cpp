#include "vtl/train/demo.h"

#include <chrono>
#include <iostream>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/data/dataset.h"
#include "vtl/data/image.h"
#include "vtl/data/loader.h"
#include "vtl/data/sample_tree.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/store.h"

namespace vtl::train {
namespace fs = std::filesystem;

namespace {

/// The demo's datasets: data::link_sample_tree over openclipart category folders, with the
/// install hint when the package is missing.
int64_t build_link_tree(const fs::path& clipart, const std::vector<std::string>& categories,
                        int64_t per_class, uint64_t seed, const fs::path& dir) {
  std::error_code ec;
  for (const auto& category : categories)
    VTL_CHECK(fs::is_directory(clipart / category, ec),
              "{}: missing; the demo needs Debian's openclipart-png (apt-get install "
              "openclipart-png, done by scripts/install-deps.sh)",
              (clipart / category).string());
  return data::link_sample_tree(clipart, categories, per_class, seed, dir);
}

}  // namespace

DemoResult run_demo(const DemoOptions& o, const std::function<void(const std::string&)>& log_fn) {
  const auto start = std::chrono::steady_clock::now();
  auto log = [&](const std::string& line) {
    if (log_fn)
      log_fn(line);
    else
      std::cout << line << std::endl;
  };
  DemoResult result;
  result.work = o.work.empty() ? vtl_home() / "demo" : o.work;
  const fs::path data_dir = result.work / "data";
  fs::create_directories(result.work);

  const int64_t target_images =
      build_link_tree(o.clipart, o.target_classes, o.target_per_class, o.seed, data_dir / "target");
  log(fmt::format("target task: {} classes of real clip-art images from {} ({} images): {}",
                  o.target_classes.size(), o.clipart.string(), target_images,
                  fmt::join(o.target_classes, ", ")));

  RunOptions common;
  common.model = o.model;
  common.img_size = o.img_size;
  common.workers = o.workers;
  common.max_image_pixels = 40LL * 1000 * 1000;  // a few clip-art PNGs have 170-620 MP
  common.config.seed = o.seed;
  common.config.batch_size = 32;
  common.progress = false;
  auto quiet = [&](const std::string& line) {
    if (line.rfind("epoch", 0) == 0 || line.rfind("classes", 0) == 0 ||
        line.rfind("train ", 0) == 0 || line.rfind("validation", 0) == 0)
      log("    " + line);
  };

  // The pretrained backbone.
  std::string base_model = o.model, base_weights;
  std::optional<fs::path> imagenet;
  if (o.use_imagenet) {
    try {
      imagenet = weights::locate_weights(o.model);
    } catch (const Error&) {
    }
  }
  if (imagenet) {
    base_weights = o.model;
    result.backbone = fmt::format("{} with ImageNet weights from {}", o.model, imagenet->string());
    log("backbone: " + result.backbone);
  } else {
    for (const auto& name : o.pretrain_classes)
      for (const auto& target : o.target_classes)
        VTL_CHECK(name != target, "demo: category '{}' is both a pretraining and a target class",
                  name);
    const int64_t pretrain_images = build_link_tree(
        o.clipart, o.pretrain_classes, o.pretrain_per_class, o.seed, data_dir / "pretrain");
    result.backbone = fmt::format(
        "{} pretrained here for {} epochs on {} other openclipart categories ({} images: {}); "
        "no ImageNet weights in {} (`vtl weights fetch {}` puts them there)",
        o.model, o.pretrain_epochs, o.pretrain_classes.size(), pretrain_images,
        fmt::join(o.pretrain_classes, ", "), (vtl_home() / "weights").string(), o.model);
    log("backbone: " + result.backbone);
    RunOptions pretrain = common;
    pretrain.data = data_dir / "pretrain";
    pretrain.out = result.work / "pretrain";
    pretrain.val_split = 0.1;
    pretrain.dropout = 0.2;
    pretrain.config.strategy = Strategy::full;
    pretrain.config.epochs = o.pretrain_epochs;
    pretrain.config.lr = 2e-3;
    pretrain.config.schedule = "onecycle";
    fs::remove_all(pretrain.out);
    log("[1/4] pretraining the backbone (all layers train)");
    auto run = run_training(pretrain, false, quiet);
    result.pretrain_acc = run.validation->top1;
    base_model = pretrain.out.string();
  }

  auto target_run = [&](const std::string& name) {
    RunOptions r = common;
    r.data = data_dir / "target";
    r.out = result.work / name;
    r.val_split = 0.25;
    std::error_code ec;
    fs::remove_all(r.out, ec);
    return r;
  };

  // From scratch: same architecture, random initialisation, everything trains.
  RunOptions scratch = target_run("scratch");
  scratch.config.strategy = Strategy::full;
  scratch.config.epochs = o.scratch_epochs;
  scratch.config.lr = 2e-3;
  scratch.config.schedule = "onecycle";
  log(fmt::format("[2/4] from scratch: {} with random weights, {} epochs", o.model,
                  o.scratch_epochs));
  auto scratch_run = run_training(scratch, false, quiet);
  result.scratch_acc = scratch_run.validation->top1;
  result.target_train = scratch_run.train_images;
  result.target_val = scratch_run.val_images;

  // Frozen pretrained base: only the new head trains, from cached features.
  RunOptions features = target_run("features");
  features.model = base_model;
  features.weights = base_weights;
  features.augment = false;
  features.config.strategy = Strategy::features;
  features.config.epochs = o.features_epochs;
  features.config.lr = 3e-3;
  log(fmt::format("[3/4] frozen pretrained base + new head, {} epochs on cached features",
                  o.features_epochs));
  result.features_acc = run_training(features, false, quiet).validation->top1;

  // Fine-tuned: head first (as above), then the last layers at a low learning rate.
  RunOptions finetune = target_run("finetune");
  finetune.model = base_model;
  finetune.weights = base_weights;
  finetune.config.strategy = Strategy::finetune;
  finetune.config.epochs = o.features_epochs;
  finetune.config.lr = 3e-3;
  finetune.config.finetune_epochs = o.finetune_epochs;
  finetune.config.finetune_lr = 1e-4;
  finetune.config.unfreeze = 10;
  finetune.augment = true;
  log(
      fmt::format("[4/4] fine-tuning: phase 1 head ({} epochs), phase 2 last 10 layers ({} "
                  "epochs, lr 1e-4)",
                  o.features_epochs, o.finetune_epochs));
  result.finetune_acc = run_training(finetune, false, quiet).validation->top1;

  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log("");
  log(fmt::format("validation accuracy on {} held-out images ({} classes, {} training images):",
                  result.target_val, o.target_classes.size(), result.target_train));
  log(fmt::format("  trained from scratch       {:6.2f}%", 100 * result.scratch_acc));
  log(fmt::format("  frozen pretrained base     {:6.2f}%", 100 * result.features_acc));
  log(fmt::format("  fine-tuned                 {:6.2f}%", 100 * result.finetune_acc));
  log(fmt::format("  (chance {:.2f}%; backbone: {})", 100.0 / o.target_classes.size(),
                  imagenet ? "ImageNet" : "self-pretrained"));
  log(fmt::format("total {:.0f}s; reports: {}/{{scratch,features,finetune}}/report.html",
                  result.seconds, result.work.string()));
  return result;
}

}  // namespace vtl::train

// vtl train: transfer learning on a folder of class subfolders (or a CSV list).

#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base_weights.h"
#include "commands.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/stop_signals.h"
#include "vtl/data/dataset.h"
#include "vtl/dist/process_group.h"
#include "vtl/models/device.h"
#include "vtl/train/run.h"

namespace vtl::cli {
namespace {

void add_train_command(CLI::App& app) {
  auto options = std::make_shared<train::RunOptions>();
  auto strategy = std::make_shared<std::string>("features");
  auto resume = std::make_shared<std::string>();
  auto no_augment = std::make_shared<bool>(false);
  auto class_weight = std::make_shared<std::string>("none");
  auto quiet = std::make_shared<bool>(false);
  auto distributed = std::make_shared<bool>(false);
  auto dist_timeout = std::make_shared<double>(0.0);
  auto dist_store_file = std::make_shared<std::string>();
  auto find_lr = std::make_shared<bool>(false);
  auto lr_range = std::make_shared<train::LrRangeOptions>();
  auto lr_range_bounds = std::make_shared<std::vector<double>>(
      std::vector<double>{lr_range->start_lr, lr_range->end_lr});
  auto& c = options->config;

  auto* cmd = app.add_subcommand(
      "train",
      "Train a new head on a pretrained base (features), then fine-tune its last layers "
      "(finetune), or train everything (full); writes a model folder with report.html");
  cmd->add_option("data", options->data,
                  "class-folder tree (one subfolder per class), CSV of path,label (an is_valid "
                  "or split column marks the validation rows), or a folder of train/ val/ test/ "
                  "class trees (trains on train/, validates on val/)");
  cmd->add_option("--model", options->model,
                  "registered model name (`vtl models`) or a model folder from an earlier run")
      ->capture_default_str();
  cmd->add_option(
      "--weights", options->weights,
      "pretrained base: catalogue name (`vtl weights list`), imagenet (the model's "
      "default catalogue entry, as Keras' weights=\"imagenet\"), .pth or "
      ".safetensors file, or random; default: the model's default weights when they are in the "
      "store, else random (with a warning)");
  cmd->add_option("--strategy", *strategy, "features, finetune or full")
      ->check(CLI::IsMember({"features", "finetune", "full"}))
      ->capture_default_str();
  cmd->add_option("--epochs", c.epochs, "epochs (phase 1 of finetune)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--finetune-epochs", c.finetune_epochs, "epochs of phase 2 (finetune)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--batch-size,--batch", c.batch_size, "images per step")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--img-size,--image-size", options->img_size,
                  "input side in pixels (default: the weights' preset)")
      ->check(CLI::Range(16, 8192));
  cmd->add_option("--lr", c.lr, "learning rate (phase 1)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--finetune-lr", c.finetune_lr, "learning rate of phase 2")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--finetune-lr-ratio", c.finetune_lr_ratio,
                  "phase 2: the first unfrozen layer learns this many times slower than the "
                  "head, the rates rising layer by layer (fastai's slice(lr/100, lr) is 100)")
      ->check(positive())
      ->capture_default_str();
  auto* unfreeze = cmd->add_option("--unfreeze", c.unfreeze,
                                   "phase 2 unfreezes the last N layers (a layer = a conv, "
                                   "batch-norm or linear module; docs/training.md)")
                       ->capture_default_str();
  cmd->add_option("--unfreeze-from", c.unfreeze_from,
                  "phase 2 unfreezes from this block on (e.g. layer4, features.6)")
      ->excludes(unfreeze);
  cmd->add_flag("--train-bn", c.train_bn, "unfrozen BatchNorm layers train in phase 2");
  auto* val_split =
      cmd->add_option("--val-split", options->val_split,
                      "fraction of each class held out for validation (0: none; the last "
                      "epoch's weights are kept)")
          ->capture_default_str();
  cmd->add_option("--val-dir", options->val_dir, "validation class-folder tree or CSV")
      ->excludes(val_split);
  add_label_source_options(cmd, options->label_source);
  cmd->add_option("--seed", c.seed, "seed of split, shuffling, augmentation, init")
      ->capture_default_str();
  cmd->add_option("--workers", options->workers, "image loading threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--no-augment", *no_augment,
                "train on the eval transform only (no flips, crops, rotation or colour "
                "changes; --mixup and --cutmix still apply)");
  cmd->add_option("--rotation", options->augment_options.rotation, "max rotation, degrees")
      ->check(CLI::Range(0.0, 180.0))
      ->capture_default_str();
  cmd->add_option("--mixup", options->augment_options.mixup_alpha, "mixup alpha (0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cutmix", options->augment_options.cutmix_alpha, "cutmix alpha (0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--dropout", options->dropout, "dropout before the new head")
      ->capture_default_str();
  cmd->add_option("--optimizer", c.optimizer, "adam, adamw or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "weight decay")->capture_default_str();
  cmd->add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  cmd->add_flag("--nesterov", c.nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--label-smoothing", c.label_smoothing, "label smoothing")->capture_default_str();
  cmd->add_option("--class-weight", *class_weight, "none or balanced (N / (K * n_class))")
      ->check(CLI::IsMember({"none", "balanced"}))
      ->capture_default_str();
  cmd->add_option("--schedule", c.schedule, "constant, step, cosine or onecycle")
      ->check(CLI::IsMember({"constant", "step", "cosine", "onecycle"}))
      ->capture_default_str();
  cmd->add_option("--warmup-epochs", c.warmup_epochs, "linear warmup")->capture_default_str();
  cmd->add_option("--step-epochs", c.step_epochs, "step schedule period")->capture_default_str();
  cmd->add_option("--step-gamma", c.step_gamma, "step schedule factor")->capture_default_str();
  cmd->add_option("--clip-grad-norm", c.clip_grad_norm, "gradient norm limit (0: off)");
  cmd->add_option("--early-stopping", c.early_stopping_patience,
                  "stop a phase after this many epochs without improvement (0: off)");
  cmd->add_option("--monitor", c.monitor, "val_loss or val_acc")
      ->check(CLI::IsMember({"val_loss", "val_acc"}))
      ->capture_default_str();
  cmd->add_flag_callback(
      "--no-restore-best", [options] { options->config.restore_best = false; },
      "keep the last weights instead of the best epoch's");
  cmd->add_option("--reduce-lr-patience", c.plateau_patience,
                  "ReduceLROnPlateau patience on val_loss (0: off)");
  cmd->add_option("--reduce-lr-factor", c.plateau_factor, "ReduceLROnPlateau factor")
      ->capture_default_str();
  cmd->add_option("--cache-features", c.cache_features,
                  "train the head from cached features: auto (frozen base and no "
                  "augmentation), on (augmentation and mixup then do not apply), off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_option("--device", c.device,
                  "cpu, cuda or cuda:N (with --distributed, cuda: each rank takes the GPU of "
                  "its LOCAL_RANK)")
      ->capture_default_str();
  cmd->add_option("--amp", c.amp,
                  "mixed precision: off, bf16 (CPU or CUDA), fp16 (CUDA, with loss scaling)")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}))
      ->capture_default_str();
  cmd->add_flag("--channels-last", c.channels_last,
                "NHWC memory format for weights and images (faster convolutions on GPUs)");
  cmd->add_option("--max-image-pixels", options->max_image_pixels,
                  "refuse (skip) images with more pixels than this")
      ->capture_default_str();
  cmd->add_option("--out", options->out, "run folder (becomes the model folder)");
  cmd->add_option("--resume", *resume, "continue the interrupted run in this folder");
  cmd->add_flag("--quiet", *quiet, "no progress bar");
  cmd->add_flag("--find-lr", *find_lr,
                "instead of training, run the learning-rate range test (fastai's lr_find) with "
                "these options and print the loss curve and a suggested --lr (with --strategy "
                "finetune: phase 1 trains, then --finetune-lr is tested); with --out, writes "
                "lr_find.csv and lr_find.html there");
  cmd->add_option("--find-lr-steps", lr_range->steps, "steps of the range test")
      ->capture_default_str();
  cmd->add_option("--find-lr-range", *lr_range_bounds,
                  "first and last learning rate of the range test")
      ->expected(2)
      ->capture_default_str();
  cmd->add_flag("--distributed", *distributed,
                "data-parallel over the ranks torchrun's environment describes (RANK, "
                "WORLD_SIZE, MASTER_ADDR, MASTER_PORT); --batch-size stays the global batch "
                "(docs/distributed.md)");
  cmd->add_option("--dist-timeout", *dist_timeout,
                  "seconds a rank waits for the others before the job stops with an error "
                  "(default $VTL_DIST_TIMEOUT or 60)");
  cmd->add_option("--dist-store-file", *dist_store_file,
                  "meet through a file on a shared file system instead of MASTER_ADDR:PORT "
                  "(default $VTL_DIST_STORE_FILE)");

  cmd->callback([=] {
    if (!resume->empty()) {
      // A resumed run repeats its run.json's settings; one given now would be ignored.
      for (const CLI::Option* option : cmd->get_options()) {
        const std::string name = option->get_name(false, true);
        if (option->count() == 0 || name == "--resume" || name == "--quiet" ||
            name.rfind("--dist", 0) == 0 || name == "--help")
          continue;
        fail(
            "{} cannot change a resumed run: `vtl train --resume {}` continues with the "
            "settings in its run.json (to train further from its weights, start a new run "
            "with `--model {}`)",
            name.rfind("-", 0) == 0 ? name : "the DATA argument", *resume, *resume);
      }
    }
    // Checked before anything is read or written (a resumed run's device is its own).
    if (resume->empty() && !*distributed) models::parse_device(options->config.device);
    std::shared_ptr<dist::ProcessGroup> group;
    if (*distributed) {
      // A resumed run's device is in its run.json (where this rank can read it).
      std::string device = options->config.device;
      if (!resume->empty()) {
        std::error_code ec;
        const auto run_json = std::filesystem::path(*resume) / "run.json";
        // A malformed run.json is reported, naming the file, when the run is resumed.
        if (std::filesystem::exists(run_json, ec)) {
          try {
            device = train::RunOptions::from_json(nlohmann::json::parse(read_file(run_json)))
                         .config.device;
          } catch (const nlohmann::json::exception&) {
          }
        }
      }
      group =
          dist::ProcessGroup::join(dist::group_options(*dist_timeout, *dist_store_file, device));
    }
    // Ctrl-C ends the step in progress and says how to continue. Not with several ranks:
    // each would stop at a step of its own and leave the others waiting.
    std::optional<StopSignals> signals;
    if (!group || group->size() == 1)
      signals.emplace("stopping after this step (again to stop at once)");
    const std::string run_dir = resume->empty() ? options->out.string() : *resume;
    try {
      if (!resume->empty()) {
        train::resume_training(*resume, {}, group, /*progress=*/!*quiet);
        return;
      }
      VTL_CHECK(!options->data.empty(), "vtl train: give the DATA folder (or --resume RUN_DIR)");
      VTL_CHECK(*find_lr || !options->out.empty(), "vtl train: give the run folder with --out DIR");
      data::check_dataset_path(options->data);  // before the weights' messages
      auto run = *options;
      run.weights = base_weights_or_default(run.model, run.weights, !group || group->is_writer());
      run.config.strategy = train::parse_strategy(*strategy);
      run.config.balanced_class_weights = *class_weight == "balanced";
      run.augment = !*no_augment;
      run.progress = !*quiet;
      run.group = group;
      if (*find_lr) {
        VTL_CHECK(!group, "--find-lr runs in one process: leave out --distributed");
        auto range = *lr_range;
        range.start_lr = lr_range_bounds->at(0);
        range.end_lr = lr_range_bounds->at(1);
        const auto curve = train::find_learning_rate(run, range);
        if (curve.valley > 0)
          std::cout << fmt::format(
              "train with: --{} {:.1e}\n",
              run.config.strategy == train::Strategy::finetune ? "finetune-lr" : "lr",
              curve.valley);
        return;
      }
      train::run_training(run);
    } catch (const Interrupted& e) {
      std::error_code ec;
      if (std::filesystem::exists(std::filesystem::path(run_dir) / "run.json", ec))
        throw Interrupted(
            fmt::format("{}; continue with: vtl train --resume {}", e.what(), run_dir), e.signal());
      throw;
    }
  });
}

}  // namespace

VTL_COMMAND(30, add_train_command);

}  // namespace vtl::cli

#pragma once
// One training run from a dataset path to a finished run folder — what `vtl train` and
// `vtl demo` do: read and split the data (class counts printed, unreadable images skipped
// and listed in skipped.txt), build the transfer model (registered name + optional
// pretrained weights, or an earlier model folder), train with Trainer, save the model
// folder (model.safetensors + model.json) into the run folder, evaluate and write
// report.html. run.json keeps the options so `resume_training` can continue after a kill;
// split.jsonl lists which images trained and which validated, so other classifiers can be
// compared on the same split (`vtl classify compare`).
//
// With a process group of several ranks (`group`, docs/distributed.md) every rank reads
// the data and trains its share; rank 0 alone prints, writes the run folder and runs the
// final evaluation and report; the others return after the last epoch.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vtl/data/dataset.h"
#include "vtl/data/transforms.h"
#include "vtl/dist/process_group.h"
#include "vtl/train/lr_finder.h"
#include "vtl/train/metrics.h"
#include "vtl/train/trainer.h"

namespace vtl::train {

struct RunOptions {
  std::filesystem::path data;     ///< class-folder tree or CSV
  std::filesystem::path val_dir;  ///< optional validation tree/CSV; else val_split
  double val_split = 0.2;
  data::LabelSource label_source;  ///< CSV columns or file-name labels; empty: the layout's
  std::string model = "resnet18";  ///< registered name or a model folder
  std::string weights;             ///< catalogue name, .pth/.safetensors file, "random" or ""
  int img_size = 0;                ///< 0: the weights' preset; else crop side (resize = /0.875)
  double dropout = 0.2;
  bool augment = true;
  data::AugmentOptions augment_options;
  int workers = 2;
  int64_t max_image_pixels = 20000LL * 20000LL;
  TrainConfig config;
  std::filesystem::path out;  ///< the run folder
  bool progress = true;       ///< progress bar and per-epoch lines
  bool report = true;         ///< write report.html
  /// Data-parallel ranks (not saved in run.json: a run may resume on other ranks); null:
  /// this process alone.
  std::shared_ptr<dist::ProcessGroup> group;

  nlohmann::json to_json() const;
  static RunOptions from_json(const nlohmann::json& json);
};

struct RunResult {
  /// The final model on the validation split; none without validation images.
  std::optional<EvalResult> validation;
  std::vector<EpochMetrics> history;
  std::vector<std::string> classes;
  double seconds = 0;  ///< wall time of the whole run
  int64_t train_images = 0, val_images = 0, skipped_images = 0;
};

/// Runs (or, with `resume`, continues) a training run; see the file comment. `log` gets
/// the human-readable lines (class counts, epochs, where files went); default: stdout.
RunResult run_training(const RunOptions& options, bool resume = false,
                       const std::function<void(const std::string&)>& log = {});

/// The learning-rate range test (lr_finder.h) of the run these options describe, in place of
/// the run: the same data, split, model, augmentation, optimizer and batch size. `features`
/// and `full` test their one phase. `finetune` tests its phase 2: phase 1 first trains the
/// head (config.epochs at config.lr; 0 when `model` is a model folder whose head is trained)
/// and the unfrozen layers are then tested. The curve and suggestions go to `log`; with
/// `out` set, lr_find.csv and lr_find.html are written there and nothing else.
LrRangeResult find_learning_rate(const RunOptions& options, const LrRangeOptions& range = {},
                                 const std::function<void(const std::string&)>& log = {});

/// Reads run_dir/run.json and continues that run from its last checkpoint (with `group`:
/// rank 0's run.json and checkpoint, sent to every rank). `progress`: as
/// RunOptions::progress (not kept in run.json). Data that is gone throws vtl::Error naming
/// the path and that it came from run.json.
RunResult resume_training(const std::filesystem::path& run_dir,
                          const std::function<void(const std::string&)>& log = {},
                          std::shared_ptr<dist::ProcessGroup> group = {}, bool progress = true);

/// One image of a run's split (a line of run_dir/split.jsonl: {"path", "class", "split"}
/// with split "train" or "val"; paths absolute).
struct SplitEntry {
  std::filesystem::path path;
  std::string class_name;
  bool validation = false;
};
/// Reads run_dir/split.jsonl; throws vtl::Error naming the file when it is missing or
/// malformed.
std::vector<SplitEntry> read_split(const std::filesystem::path& run_dir);

/// A preset for a square input of `img_size` pixels (resize = img_size / 0.875, as the
/// ImageNet presets do), keeping `base`'s normalization.
Preprocessing preset_for_size(const Preprocessing& base, int img_size);

}  // namespace vtl::train

#include "vtl/train/run.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/json_document.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/folder_lock.h"
#include "vtl/core/progress_line.h"
#include "vtl/data/dataset.h"
#include "vtl/data/loader.h"
#include "vtl/data/splits.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/precision.h"
#include "vtl/models/pretrained.h"
#include "vtl/models/registry.h"
#include "vtl/train/metrics.h"
#include "vtl/train/report.h"

namespace vtl::train {
namespace fs = std::filesystem;

namespace {

nlohmann::json augment_to_json(const data::AugmentOptions& a) {
  return {{"random_resized_crop", a.random_resized_crop},
          {"scale_min", a.scale_min},
          {"scale_max", a.scale_max},
          {"ratio_min", a.ratio_min},
          {"ratio_max", a.ratio_max},
          {"horizontal_flip", a.horizontal_flip},
          {"rotation", a.rotation},
          {"zoom", a.zoom},
          {"translate", a.translate},
          {"brightness", a.brightness},
          {"contrast", a.contrast},
          {"saturation", a.saturation},
          {"hue", a.hue},
          {"mixup_alpha", a.mixup_alpha},
          {"cutmix_alpha", a.cutmix_alpha}};
}

data::AugmentOptions augment_from_json(const nlohmann::json& j) {
  data::AugmentOptions a;
#define VTL_READ(field) a.field = j.value(#field, a.field)
  VTL_READ(random_resized_crop);
  VTL_READ(scale_min);
  VTL_READ(scale_max);
  VTL_READ(ratio_min);
  VTL_READ(ratio_max);
  VTL_READ(horizontal_flip);
  VTL_READ(rotation);
  VTL_READ(zoom);
  VTL_READ(translate);
  VTL_READ(brightness);
  VTL_READ(contrast);
  VTL_READ(saturation);
  VTL_READ(hue);
  VTL_READ(mixup_alpha);
  VTL_READ(cutmix_alpha);
#undef VTL_READ
  return a;
}

void write_skipped(const fs::path& path, const std::vector<data::SkippedFile>& skipped) {
  std::string text;
  for (const auto& file : skipped) text += file.path.string() + "\t" + file.reason + "\n";
  write_file_atomically(path, text);
}

/// split.jsonl: one line per usable image of both splits (see SplitEntry).
void write_split(const fs::path& path, const data::Dataset& train, const data::Dataset& val) {
  std::string text;
  for (const auto* set : {&train, &val}) {
    for (const auto& sample : set->samples) {
      nlohmann::json line = {{"path", fs::absolute(sample.path).lexically_normal().string()},
                             {"class", set->classes.at(static_cast<size_t>(sample.label))},
                             {"split", set == &val ? "val" : "train"}};
      text += line.dump() + "\n";
    }
  }
  write_file_atomically(path, text);
}

/// What a run trains: its images (listed, split, decoded; unreadable ones skipped and, when
/// `skipped_file` is given, listed there) and its model, built as the options say.
struct PreparedRun {
  TrainData train_data;
  std::vector<data::SkippedFile> skipped;
  models::TransferModel model{nullptr};
  std::string base_weights = "random";
};

/// A resumed run trains and validates on the images its split.jsonl lists (`recorded`),
/// whatever was added to or taken from the data since: a fresh split of changed data
/// would move images between training and validation mid-run. `train` and `validation`,
/// the data's split now, are replaced; recorded files that are gone are skipped. Throws
/// vtl::Error when the class folders changed (the head has one output per class).
void keep_recorded_split(const std::vector<SplitEntry>& recorded, data::Dataset& train,
                         data::Dataset& validation,
                         const std::function<void(const std::string&)>& log) {
  std::map<std::string, int64_t> label_of;
  for (size_t k = 0; k < train.classes.size(); ++k) label_of[train.classes[k]] = int64_t(k);
  std::set<std::string> gone_classes;
  for (const auto& entry : recorded)
    if (!label_of.count(entry.class_name)) gone_classes.insert(entry.class_name);
  VTL_CHECK(gone_classes.empty(),
            "the data no longer has the class{} {} that this run trains on; resume needs the "
            "same classes (restore them, or start a new run)",
            gone_classes.size() > 1 ? "es" : "", fmt::join(gone_classes, ", "));
  std::set<std::string> now;
  for (const auto* set : {&train, &validation})
    for (const auto& sample : set->samples)
      now.insert(fs::absolute(sample.path).lexically_normal().string());
  data::Dataset kept_train, kept_validation;
  kept_train.classes = kept_validation.classes = train.classes;
  kept_train.skipped = train.skipped;
  kept_validation.skipped = validation.skipped;
  size_t gone = 0, listed = 0;
  std::error_code ec;
  for (const auto& entry : recorded) {
    auto& set = entry.validation ? kept_validation : kept_train;
    if (!fs::exists(entry.path, ec)) {
      ++gone;
      set.skipped.push_back({entry.path, "gone since the run started (listed in split.jsonl)"});
      continue;
    }
    listed += now.count(entry.path.string());
    set.samples.push_back({entry.path, label_of.at(entry.class_name)});
  }
  const size_t added = now.size() - listed;
  if (gone > 0 || added > 0)
    log(fmt::format(
        "note: the data changed since the run started ({} images not in the run's split, {} of "
        "its images gone); the resumed run keeps its split (split.jsonl)",
        added, gone));
  train = std::move(kept_train);
  validation = std::move(kept_validation);
}

/// Throws vtl::Error on every rank when some rank was started with other training settings
/// than rank 0 (another --batch-size crashed Gloo; another --seed split the data otherwise,
/// so that one rank's validation images were another's training images). The rank that
/// differs names the options. Paths, --out and --workers may differ between machines.
void check_same_options(const RunOptions& options, dist::ProcessGroup& group) {
  nlohmann::json mine = options.to_json();
  for (const char* per_machine : {"data", "val_dir", "weights", "model", "out", "workers"})
    mine.erase(per_machine);
  // One level of keys: "/config/batch_size" and "/img_size" alike.
  mine = mine.flatten();
  const auto first =
      nlohmann::json::parse(group.broadcast_bytes(group.is_writer() ? mine.dump() : std::string()));
  std::vector<std::string> differing;
  for (const auto& [key, value] : mine.items()) {
    const auto theirs = first.value(key, nlohmann::json());
    if (theirs != value)
      differing.push_back(fmt::format("{} {} (rank 0: {})", key.substr(key.rfind('/') + 1),
                                      value.dump(), theirs.dump()));
  }
  auto count = torch::tensor({float(differing.empty() ? 0 : 1)}).to(group.device());
  group.allreduce_sum({count});
  VTL_CHECK(differing.empty(),
            "--distributed: rank {} was started with other settings than rank 0: {}; every rank "
            "must run the same command",
            group.rank(), fmt::join(differing, ", "));
  VTL_CHECK(count.item<float>() == 0,
            "--distributed: {} other rank(s) were started with other settings than rank 0 (their "
            "messages name them); every rank must run the same command",
            int(count.item<float>()));
}

/// Validation images that are also training images: the same file by its resolved path
/// (a CSV row listed twice, --val-dir naming the training folder, a link to a training file).
struct SharedImages {
  size_t count = 0;
  fs::path first;
};
SharedImages shared_images(const data::Dataset& train, const data::Dataset& validation) {
  std::set<fs::path> training;
  std::error_code ec;
  for (const auto& sample : train.samples) training.insert(fs::weakly_canonical(sample.path, ec));
  SharedImages shared;
  for (const auto& sample : validation.samples) {
    if (!training.count(fs::weakly_canonical(sample.path, ec))) continue;
    if (shared.count++ == 0) shared.first = sample.path;
  }
  return shared;
}

/// Throws vtl::Error, before any image is read, when the run folder `out` cannot be one:
/// a file, a folder that cannot be created, or a place inside the data folder `data`
/// (where its files would become a class of the next run).
void check_run_folder(const fs::path& out, const fs::path& data) {
  std::error_code ec;
  VTL_CHECK(!fs::exists(out, ec) || fs::is_directory(out, ec),
            "--out {} is a file, not a folder for the run", out.string());
  if (fs::is_directory(data, ec)) {
    const fs::path run = fs::weakly_canonical(fs::absolute(out), ec);
    const fs::path images = fs::weakly_canonical(fs::absolute(data), ec);
    const auto [end, _] = std::mismatch(images.begin(), images.end(), run.begin(), run.end());
    VTL_CHECK(end != images.end(),
              "--out {} is inside the data folder {}: the run's files would be read as images "
              "or a class by the next run; choose a folder outside it",
              out.string(), data.string());
  }
  fs::create_directories(out, ec);
  VTL_CHECK(!ec, "cannot create the run folder {}: {}", out.string(), ec.message());
}

PreparedRun prepare_run(const RunOptions& options,
                        const std::function<void(const std::string&)>& log,
                        const fs::path& skipped_file,
                        const std::vector<SplitEntry>& recorded = {}) {
  const bool writer = !options.group || options.group->is_writer();
  // Data.
  // Split folders or a CSV split column say which images train and validate (an explicit
  // --val-dir wins); their test images are left for `vtl evaluate`.
  auto split = data::open_training_split(options.data, options.val_dir, options.val_split,
                                         options.config.seed, options.label_source);
  if (!split.description.empty()) log(split.description);
  data::Dataset train_set = std::move(split.train), val_set = std::move(split.validation);
  if (!recorded.empty()) keep_recorded_split(recorded, train_set, val_set, log);
  // Without validation images (--val-split 0 and no folder or column naming them) the
  // last epoch's weights are the result.
  const bool validates = !val_set.samples.empty();
  if (const auto shared = shared_images(train_set, val_set); shared.count > 0)
    log(fmt::format(
        "warning: {} of the {} validation images are also training images (the first: {}); "
        "validation accuracy will read too high: give a validation set of other images",
        shared.count, val_set.samples.size(), shared.first.string()));
  VTL_CHECK(train_set.classes.size() >= 2, "{}: need at least 2 classes, found {}",
            options.data.string(), train_set.classes.size());

  // Model: initialisation (and dropout masks) follow --seed.
  torch::manual_seed(options.config.seed);
  models::Model base{nullptr};
  Preprocessing preprocessing;
  std::string base_weights = "random";
  models::TransferModel model{nullptr};
  const int64_t num_classes = int64_t(train_set.classes.size());
  std::error_code ec;
  if (!models::is_model_folder(options.model) && fs::is_directory(options.model, ec)) {
    VTL_CHECK(!fs::exists(fs::path(options.model) / "run.json", ec),
              "--model {} is a training run that has not finished (it has no model.json yet): "
              "finish it with `vtl train --resume {}`, or give a finished run",
              options.model, options.model);
    fail(
        "--model {} is a folder but not a model folder (no model.json): give a model name "
        "(`vtl models`) or the folder of a finished `vtl train` run",
        options.model);
  }
  if (models::is_model_folder(options.model)) {
    VTL_CHECK(options.weights.empty(),
              "--weights {} has no effect with --model {}: a model folder holds its own weights "
              "(leave out --weights, or give an architecture name as --model)",
              options.weights, options.model);
    auto loaded = models::load_model_folder(options.model);
    preprocessing = loaded.preprocessing;
    base_weights = "model folder " + options.model;
    model = loaded.model;
    if (loaded.class_names != train_set.classes) {
      model->reset_head(num_classes);
      log(fmt::format("model folder {}: base reused, new head for {} classes", options.model,
                      num_classes));
    }
  } else {
    const auto& info = models::model_info(options.model);
    if (options.weights.empty() || options.weights == "random") {
      base = models::create_model(options.model, models::ModelOptions().include_top(false));
      preprocessing = preset_for_size(Preprocessing{}, int(info.default_input_size));
    } else {
      auto pretrained = models::load_pretrained(options.model, options.weights,
                                                models::ModelOptions().include_top(false));
      base = pretrained.model;
      preprocessing = pretrained.preprocessing;
      base_weights = pretrained.weights;
      log(fmt::format("base {}: {}", options.model, pretrained.report.summary()));
    }
    model = models::TransferModel(base, num_classes, options.dropout);
  }
  if (options.img_size > 0) preprocessing = preset_for_size(preprocessing, options.img_size);
  // Before any image is read, not at phase 2.
  check_config(options.config, model, validates);

  // Images: decoded once, shrunk to what the transforms need, unreadable ones skipped.
  data::DecodeOptions decode;
  decode.max_pixels = options.max_image_pixels;
  auto store = std::make_shared<data::ImageStore>(decode, preprocessing.resize);
  for (auto* part : {&train_set, &val_set}) {
    std::optional<ProgressLine> progress;
    if (options.progress && writer) progress.emplace();
    const std::string what =
        part == &train_set ? "reading the training images" : "reading the validation images";
    store->prepare(*part, options.workers, [&](size_t done, size_t total) {
      if (progress)
        progress->show(what + ": " + progress->counted(int64_t(done), int64_t(total), "images"),
                       done == total);
    });
  }
  std::vector<data::SkippedFile> skipped = train_set.skipped;
  for (const auto& file : val_set.skipped) skipped.push_back(file);
  if (!skipped_file.empty()) {
    fs::create_directories(skipped_file.parent_path());
    write_skipped(skipped_file, skipped);
  }
  // Per class: training images, then validation images when there are any.
  log(fmt::format(
      "classes ({}): {} (training){}", train_set.classes.size(), train_set.describe_counts(),
      val_set.samples.empty() ? std::string() : "; validation: " + val_set.describe_counts()));
  log(fmt::format("train {} images, validation {} images, skipped {}{}", train_set.samples.size(),
                  val_set.samples.size(), skipped.size(),
                  skipped_file.empty() || skipped.empty()
                      ? std::string()
                      : fmt::format(" (listed in {})", skipped_file.string())));
  constexpr size_t kSkippedShown = 5;
  for (size_t i = 0; i < std::min(skipped.size(), kSkippedShown); ++i)
    log(fmt::format("  skipped {}: {}", skipped[i].path.string(), skipped[i].reason));
  if (skipped.size() > kSkippedShown) {
    log(fmt::format("  ... and {} more{}", skipped.size() - kSkippedShown,
                    skipped_file.empty() ? std::string() : " in " + skipped_file.string()));
  }
  VTL_CHECK(!val_set.samples.empty() || (!validates && options.val_split == 0),
            "no validation images: give --val-dir or a --val-split with 2+ images per class "
            "(--val-split 0 trains without validation)");
  if (!validates) {
    log("no validation images (--val-split 0): no val_loss or val_acc, the last epoch's "
        "weights are kept; measure the model with `vtl evaluate`");
  } else {
    // Validation metrics only speak for the classes validation has.
    std::vector<std::string> unvalidated;
    const auto val_counts = val_set.class_counts();
    for (size_t k = 0; k < val_counts.size(); ++k)
      if (val_counts[k] == 0) unvalidated.push_back(val_set.classes[k]);
    if (!unvalidated.empty())
      log(fmt::format(
          "warning: validation has no images of {} of the {} classes ({}{}); "
          "val_acc and val_loss speak for the others only",
          unvalidated.size(), val_counts.size(),
          fmt::join(unvalidated.begin(),
                    unvalidated.begin() + std::min<size_t>(unvalidated.size(), 5), ", "),
          unvalidated.size() > 5 ? ", ..." : ""));
  }

  PreparedRun prepared;
  TrainData& train_data = prepared.train_data;
  train_data.train = std::move(train_set);
  train_data.val = std::move(val_set);
  train_data.store = store;
  train_data.preprocessing = preprocessing;
  train_data.augment = options.augment ? options.augment_options : data::AugmentOptions::none();
  // --no-augment turns off the per-image transforms; mixup and cutmix, asked for by name,
  // stay.
  train_data.augment.mixup_alpha = options.augment_options.mixup_alpha;
  train_data.augment.cutmix_alpha = options.augment_options.cutmix_alpha;
  train_data.workers = options.workers;
  prepared.skipped = std::move(skipped);
  prepared.model = model;
  prepared.base_weights = base_weights;
  return prepared;
}

}  // namespace

namespace {

/// The lines of a split.jsonl (`path` names it in errors).
std::vector<SplitEntry> parse_split(const std::string& text, const fs::path& path) {
  std::istringstream in(text);
  std::vector<SplitEntry> entries;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    try {
      const auto json = parse_json_document(line, fmt::format("{}:{}", path.string(), line_number));
      const auto split = json.at("split").get<std::string>();
      VTL_CHECK(split == "train" || split == "val", "split '{}' is neither train nor val", split);
      entries.push_back({json.at("path").get<std::string>(), json.at("class").get<std::string>(),
                         split == "val"});
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: {}", path.string(), line_number, e.what());
    } catch (const Error& e) {
      fail("{}:{}: {}", path.string(), line_number, e.what());
    }
  }
  return entries;
}

}  // namespace

std::vector<SplitEntry> read_split(const fs::path& run_dir) {
  const fs::path path = run_dir / "split.jsonl";
  std::error_code ec;
  VTL_CHECK(fs::exists(path, ec), "{}: missing; it is written by `vtl train` into its run folder",
            path.string());
  return parse_split(read_file(path), path);
}

namespace {

/// `path` absolute when it names something that exists (a resumed run may start from
/// another folder); otherwise as given (a catalogue name, a registry model name).
std::string absolute_if_present(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) return path;
  return fs::absolute(path, ec).lexically_normal().string();
}

}  // namespace

nlohmann::json RunOptions::to_json() const {
  return {{"data", absolute_if_present(data.string())},
          {"val_dir", absolute_if_present(val_dir.string())},
          {"val_split", val_split},
          {"path_column", label_source.path_column},
          {"label_column", label_source.label_column},
          {"label_pattern", label_source.name_pattern},
          {"model", models::is_model_folder(model) ? absolute_if_present(model) : model},
          {"weights", absolute_if_present(weights)},
          {"img_size", img_size},
          {"dropout", dropout},
          {"augment", augment},
          {"augment_options", augment_to_json(augment_options)},
          {"workers", workers},
          {"max_image_pixels", max_image_pixels},
          {"config", config.to_json()},
          {"out", out.string()}};
}

RunOptions RunOptions::from_json(const nlohmann::json& j) {
  RunOptions o;
  o.data = j.at("data").get<std::string>();
  o.val_dir = j.value("val_dir", std::string());
  o.val_split = j.value("val_split", o.val_split);
  o.label_source.path_column = j.value("path_column", std::string());
  o.label_source.label_column = j.value("label_column", std::string());
  o.label_source.name_pattern = j.value("label_pattern", std::string());
  o.model = j.at("model").get<std::string>();
  o.weights = j.value("weights", std::string());
  o.img_size = j.value("img_size", 0);
  o.dropout = j.value("dropout", o.dropout);
  o.augment = j.value("augment", true);
  o.augment_options = augment_from_json(j.value("augment_options", nlohmann::json::object()));
  o.workers = j.value("workers", o.workers);
  o.max_image_pixels = j.value("max_image_pixels", o.max_image_pixels);
  o.config = TrainConfig::from_json(j.at("config"));
  o.out = j.at("out").get<std::string>();
  return o;
}

Preprocessing preset_for_size(const Preprocessing& base, int img_size) {
  VTL_CHECK(img_size >= 16, "--img-size must be at least 16 pixels (got {})", img_size);
  Preprocessing p = base;
  p.crop = img_size;
  p.resize = static_cast<int>(std::lround(img_size / 0.875));
  return p;
}

RunResult run_training(const RunOptions& options, bool resume,
                       const std::function<void(const std::string&)>& log_fn) {
  const auto start = std::chrono::steady_clock::now();
  const bool writer = !options.group || options.group->is_writer();
  auto log = [&](const std::string& line) {
    if (!writer) return;
    if (log_fn)
      log_fn(line);
    else
      std::cout << line << std::endl;
  };
  const fs::path out = options.out;
  VTL_CHECK(!out.empty(), "no run folder given (--out DIR)");
  std::error_code ec;
  if (!resume && writer) {
    VTL_CHECK(!fs::exists(out / "checkpoint" / "last.pt", ec),
              "{}: already holds a training run; continue it with `vtl train --resume {}` or "
              "choose another --out",
              out.string(), out.string());
  }

  if (options.group && options.group->size() > 1) check_same_options(options, *options.group);
  if (writer) check_run_folder(out, options.data);
  std::optional<FolderLock> lock;
  if (writer) lock.emplace(out, "vtl train", "wait for it to end, or choose another --out");
  std::vector<SplitEntry> recorded;
  if (resume) {
    // Every rank trains on rank 0's record (another rank may not see the run folder).
    std::string text;
    std::error_code ec;
    if (writer && fs::exists(out / "split.jsonl", ec)) text = read_file(out / "split.jsonl");
    if (options.group) text = options.group->broadcast_bytes(text);
    recorded = parse_split(text, out / "split.jsonl");
  }
  PreparedRun prepared =
      prepare_run(options, log, writer ? out / "skipped.txt" : fs::path(), recorded);
  const auto& train_set = prepared.train_data.train;
  const auto& val_set = prepared.train_data.val;
  const auto& skipped = prepared.skipped;

  if (!resume && writer) {
    write_file_atomically(out / "run.json", options.to_json().dump(2) + "\n");
    write_split(out / "split.jsonl", train_set, val_set);
  }

  Trainer trainer(prepared.model, options.config, prepared.train_data, out, options.group);
  const auto advice = models::precision_advice(parse_precision(options.config.amp),
                                               torch::Device(options.config.device));
  if (!advice.empty()) log("note: " + advice);
  trainer.show_progress = options.progress && writer;
  trainer.on_epoch = [&](const EpochMetrics& m) {
    const std::string validation =
        trainer.has_validation()
            ? fmt::format("  val_loss {:.4f}  val_acc {:.4f}", m.val_loss, m.val_acc)
            : std::string();
    log(
        fmt::format("epoch {:3d} (phase {})  lr {:.2e}  loss {:.4f}  acc {:.4f}{}  {:.1f}s  {:.0f} "
                    "img/s{}",
                    m.epoch, m.phase, m.lr, m.train_loss, m.train_acc, validation, m.seconds,
                    m.images_per_second, m.cached ? "  (cached features)" : ""));
  };
  trainer.on_event = [&](const nlohmann::json& event) {
    log(fmt::format("  epoch {}: {}", event.at("epoch").get<int64_t>(),
                    event.at("event").get<std::string>()));
  };
  trainer.fit(resume);

  RunResult result;
  result.history = trainer.history();
  result.classes = train_set.classes;
  if (!writer) return result;  // rank 0 evaluates and writes the model folder
  if (trainer.has_validation()) result.validation = trainer.evaluate_validation();
  result.train_images = int64_t(train_set.samples.size());
  result.val_images = int64_t(val_set.samples.size());
  result.skipped_images = int64_t(skipped.size());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  models::ModelFolderInfo info;
  info.class_names = train_set.classes;
  info.preprocessing = prepared.train_data.preprocessing;
  info.base_weights = prepared.base_weights;
  nlohmann::json history = nlohmann::json::array();
  for (const auto& m : result.history) history.push_back(m.to_json());
  const auto metric_or_null = [&](double EvalResult::*metric) -> nlohmann::json {
    if (!result.validation) return nullptr;
    return (*result.validation).*metric;
  };
  info.training = {{"config", options.config.to_json()},
                   {"data", options.data.string()},
                   {"label_source",
                    {{"path_column", options.label_source.path_column},
                     {"label_column", options.label_source.label_column},
                     {"label_pattern", options.label_source.name_pattern}}},
                   {"train_images", result.train_images},
                   {"val_images", result.val_images},
                   {"skipped_images", result.skipped_images},
                   {"val_loss", metric_or_null(&EvalResult::loss)},
                   {"val_top1", metric_or_null(&EvalResult::top1)},
                   {"val_top5", metric_or_null(&EvalResult::top5)},
                   {"history", history},
                   {"events", trainer.events()}};
  trainer.model()->to(torch::kCPU);
  models::save_model_folder(out, trainer.model(), info);
  if (result.validation)
    write_file_atomically(out / "evaluation.json",
                          result.validation->to_json(train_set.classes).dump(2) + "\n");
  if (options.report) {
    ReportInput report;
    report.title = fmt::format("{} — {} ({})", out.filename().string(),
                               trainer.model()->architecture(), to_string(options.config.strategy));
    report.classes = train_set.classes;
    report.history = result.history;
    report.events = trainer.events();
    report.evaluation = result.validation;
    report.samples = val_set.samples;
    report.settings = options.to_json();
    report.settings["base_weights"] = prepared.base_weights;
    write_report(out / "report.html", report);
  }
  if (!result.validation) {
    log(fmt::format("no validation; model folder {} ({:.1f}s)", out.string(), result.seconds));
    return result;
  }
  const auto& validation = *result.validation;
  const std::string top5 = top5_is_informative(train_set.classes.size())
                               ? fmt::format(", top-5 {:.4f}", validation.top5)
                               : std::string();
  log(fmt::format("validation: top-1 {:.4f}{}, loss {:.4f} ({} images); model folder {} ({:.1f}s)",
                  validation.top1, top5, validation.loss, validation.count, out.string(),
                  result.seconds));
  return result;
}

LrRangeResult find_learning_rate(const RunOptions& options, const LrRangeOptions& range,
                                 const std::function<void(const std::string&)>& log_fn) {
  range.validate();
  VTL_CHECK(!options.group || options.group->size() == 1,
            "the learning-rate range test runs in one process (without --distributed)");
  auto log = [&](const std::string& line) {
    if (log_fn)
      log_fn(line);
    else
      std::cout << line << std::endl;
  };
  PreparedRun prepared = prepare_run(options, log, fs::path());
  TrainConfig config = options.config;
  const bool finetune = config.strategy == Strategy::finetune;
  if (finetune) config.finetune_epochs = 0;  // phase 1 trains; phase 2 is tested
  Trainer trainer(prepared.model, config, prepared.train_data);
  trainer.show_progress = options.progress;
  if (finetune && config.epochs > 0) {
    log(fmt::format("phase 1: training the head for {} epoch{} at lr {:g}, then testing phase 2",
                    config.epochs, config.epochs == 1 ? "" : "s", config.lr));
    trainer.on_epoch = [&](const EpochMetrics& m) {
      log(
          fmt::format("epoch {:3d} (phase 1)  loss {:.4f}  acc {:.4f}  val_loss {:.4f}  val_acc "
                      "{:.4f}  {:.1f}s",
                      m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.seconds));
    };
    trainer.fit();
  }
  const int phase = finetune ? 2 : 1;
  log(fmt::format("learning-rate range test of phase {} ({}): {} steps from {:.1e} to {:.1e}",
                  phase, finetune ? "fine-tuning" : to_string(config.strategy), range.steps,
                  range.start_lr, range.end_lr));
  const auto result = trainer.find_lr(range, phase);
  auto curve = render_lr_curve_text(result);
  if (!curve.empty() && curve.back() == '\n') curve.pop_back();  // log adds the line end
  log(curve);
  if (!options.out.empty()) {
    write_lr_range_files(
        options.out, result,
        fmt::format("Learning-rate range test — {} ({}, phase {})", prepared.model->architecture(),
                    to_string(config.strategy), phase));
    log(fmt::format("curve: {}, {}", (options.out / "lr_find.html").string(),
                    (options.out / "lr_find.csv").string()));
  }
  return result;
}

RunResult resume_training(const fs::path& run_dir,
                          const std::function<void(const std::string&)>& log,
                          std::shared_ptr<dist::ProcessGroup> group, bool progress) {
  const auto path = run_dir / "run.json";
  std::error_code ec;
  std::string text;
  if (!group || group->is_writer()) {
    VTL_CHECK(fs::exists(path, ec), "{}: no run to resume (no run.json)", run_dir.string());
    text = read_file(path);
  }
  if (group) text = group->broadcast_bytes(text);
  RunOptions options;
  try {
    options = RunOptions::from_json(parse_json_document(text, path.string()));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed run description: {}", path.string(), e.what());
  }
  options.out = run_dir;
  options.group = std::move(group);
  options.progress = progress;
  std::error_code exists_error;
  for (const auto& [key, data] : {std::pair<const char*, const fs::path&>{"data", options.data},
                                  {"val_dir", options.val_dir}}) {
    VTL_CHECK(data.empty() || fs::exists(data, exists_error),
              "{}: no such folder or CSV file (the \"{}\" of this run, from {}; a run started "
              "before paths were kept absolute is resumed from the folder it was started in)",
              data.string(), key, path.string());
  }
  return run_training(options, /*resume=*/true, log);
}

}  // namespace vtl::train

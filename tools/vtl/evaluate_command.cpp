// vtl evaluate: a trained model folder on a labelled image set.

#include <algorithm>
#include <iostream>
#include <tuple>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "prediction_csv.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/progress_line.h"
#include "vtl/data/dataset.h"
#include "vtl/data/loader.h"
#include "vtl/data/splits.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/device.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/precision.h"
#include "vtl/train/metrics.h"
#include "vtl/train/report.h"

namespace vtl::cli {
namespace {

struct EvaluateArgs {
  std::string model_dir, data;
  int64_t batch_size = 32;
  int workers = 2;
  bool json = false;
  int64_t max_image_pixels = 20000LL * 20000LL;
  std::string amp = "off";
  std::string device = "cpu";
  std::string report;
  std::string csv;  ///< per-image table, when given
  data::LabelSource label_source;
};

/// The data's label source: the one given, else the training's when it fits the data (a
/// file-name pattern for a folder, CSV columns for a file), said on `out` unless `quiet`.
data::LabelSource evaluation_label_source(const EvaluateArgs& args, const nlohmann::json& model,
                                          bool quiet, std::ostream& out) {
  if (!args.label_source.empty()) return args.label_source;
  const auto trained = model.value("training", nlohmann::json::object())
                           .value("label_source", nlohmann::json::object());
  data::LabelSource source;
  source.path_column = trained.value("path_column", std::string());
  source.label_column = trained.value("label_column", std::string());
  source.name_pattern = trained.value("label_pattern", std::string());
  std::error_code ec;
  const bool folder = std::filesystem::is_directory(args.data, ec);
  if (source.empty() || folder != !source.name_pattern.empty()) return {};
  if (!quiet) {
    std::string chosen;
    if (folder) chosen = fmt::format(" --label-pattern '{}'", source.name_pattern);
    if (!source.path_column.empty())
      chosen += fmt::format(" --path-column '{}'", source.path_column);
    if (!source.label_column.empty())
      chosen += fmt::format(" --label-column '{}'", source.label_column);
    out << "labels:" << chosen << " (as trained)\n";
  }
  return source;
}

void run_evaluate(const EvaluateArgs& args) {
  // `--csv -` puts the table on standard output; the summary then goes to stderr.
  const bool csv_on_stdout = !args.csv.empty() && names_standard_output(args.csv);
  VTL_CHECK(!csv_on_stdout || !args.json,
            "--csv - and --json would both write to standard output; give --csv a file name");
  std::ostream& out = csv_on_stdout ? std::cerr : std::cout;
  const torch::Device device = models::parse_device(args.device);
  const auto precision = models::parse_precision(args.amp);
  models::check_precision_supported(precision, device);
  if (!args.json) print_precision_note(precision, device);
  auto loaded = models::load_model_folder(args.model_dir);
  models::fold_batch_norms(*loaded.model);  // inference only: one pass less per BatchNorm
  loaded.model->to(device);
  // Split folders are evaluated on their test/ (else val/), a CSV with a split column on its
  // test rows (else valid rows). The data's class names must be the model's; folders or
  // labels the model lacks are errors.
  auto evaluation = data::open_evaluation_set(
      args.data, loaded.class_names, evaluation_label_source(args, loaded.json, args.json, out));
  if (!args.json && !evaluation.description.empty()) out << evaluation.description << "\n";
  auto& dataset = evaluation.images;
  const std::string data_path = evaluation.source.string();
  data::DecodeOptions decode;
  decode.max_pixels = args.max_image_pixels;
  // prepare() decodes every image once (unreadable ones are left out and listed) and keeps
  // them, shrunk to the transform's resize side (about 0.2 MB each at 256 px), for the
  // loader; beyond 1 GiB the loader decodes the rest a second time.
  auto store = std::make_shared<data::ImageStore>(decode, loaded.preprocessing.resize,
                                                  /*memory_budget=*/1LL << 30);
  {
    ProgressLine progress;
    store->prepare(dataset, args.workers, [&](size_t done, size_t total) {
      if (!args.json)
        progress.show(
            "reading images: " + progress.counted(int64_t(done), int64_t(total), "images"),
            done == total);
    });
  }
  VTL_CHECK(!dataset.samples.empty(), "{}: no readable images", data_path);
  data::LoaderOptions options;
  options.batch_size = args.batch_size;
  options.workers = args.workers;
  options.preprocessing = loaded.preprocessing;
  data::Loader loader(dataset, store, options);
  auto result = train::evaluate(loaded.model, loader, device, precision);

  if (!args.report.empty()) {
    train::ReportInput report;
    report.title = fmt::format("{} on {}", args.model_dir, data_path);
    report.classes = loaded.class_names;
    report.evaluation = result;
    report.samples = dataset.samples;
    report.evaluated_on = data_path;
    report.settings = {{"model", args.model_dir},
                       {"data", data_path},
                       {"architecture", loaded.architecture},
                       {"skipped", dataset.skipped.size()}};
    train::write_report(args.report, report);
  }

  // Misclassified images, most confident first: where mislabelled or ambiguous images are.
  const std::vector<size_t> mistakes = result.mistakes();
  auto path_of = [&](size_t i) {
    const size_t sample = i < result.indices.size() ? result.indices[i] : i;
    return dataset.samples.at(sample).path.string();
  };
  const auto& names = loaded.class_names;
  if (!args.csv.empty()) {
    // In the data's order (the loader may answer batches out of it).
    std::vector<size_t> order(result.labels.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (result.indices.size() == order.size())
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return result.indices[a] < result.indices[b]; });
    std::string table = "image,label,predicted,probability,correct\n";
    for (const size_t i : order)
      table += fmt::format("{},{},{},{:.6g},{}\n", csv_field(path_of(i)),
                           csv_field(names.at(size_t(result.labels[i]))),
                           csv_field(names.at(size_t(result.predicted[i]))), result.confidence[i],
                           result.labels[i] == result.predicted[i] ? 1 : 0);
    write_file_atomically(args.csv, table);
  }

  if (args.json) {
    auto json = result.to_json(loaded.class_names);
    nlohmann::json wrong = nlohmann::json::array();
    for (size_t i : mistakes)
      wrong.push_back({{"path", path_of(i)},
                       {"class", names.at(size_t(result.labels[i]))},
                       {"predicted", names.at(size_t(result.predicted[i]))},
                       {"confidence", result.confidence[i]}});
    json["mistakes"] = wrong;
    json["model"] = args.model_dir;
    json["data"] = data_path;
    nlohmann::json skipped = nlohmann::json::array();
    for (const auto& file : dataset.skipped)
      skipped.push_back({{"path", file.path.string()}, {"reason", file.reason}});
    json["skipped"] = skipped;
    out << json_text(json, 2) << "\n";
    return;
  }
  out << fmt::format("{} on {}: {} images ({} skipped){}\n", args.model_dir, data_path,
                     result.count, dataset.skipped.size(),
                     args.report.empty() ? "" : "; report: " + args.report);
  for (const auto& file : dataset.skipped)
    out << fmt::format("  skipped {}: {}\n", file.path.string(), file.reason);
  const std::string top5 = train::top5_is_informative(loaded.class_names.size())
                               ? fmt::format("  top-5 {:.2f}%", 100 * result.top5)
                               : std::string();
  out << fmt::format("loss {:.4f}  top-1 {:.2f}%{}  macro F1 {:.3f}\n\n", result.loss,
                     100 * result.top1, top5, result.macro_f1());
  size_t width = 5;
  for (const auto& name : loaded.class_names) width = std::max(width, name.size());
  out << fmt::format("{:<{}}  precision  recall     F1  images\n", "class", width);
  for (size_t c = 0; c < loaded.class_names.size(); ++c) {
    if (!result.occurs(c)) {
      // Neither in the data nor predicted: nothing to measure (left out of macro F1).
      out << fmt::format("{:<{}}  {:>9}  {:>6}  {:>5}  {:6d}\n", loaded.class_names[c], width, "-",
                         "-", "-", 0);
      continue;
    }
    out << fmt::format("{:<{}}  {:9.3f}  {:6.3f}  {:5.3f}  {:6d}\n", loaded.class_names[c], width,
                       result.precision[c], result.recall[c], result.f1[c], result.support[c]);
  }
  out << "\nconfusion matrix (rows: true class, columns: predicted, in the order above)\n";
  for (size_t r = 0; r < result.confusion.size(); ++r) {
    out << fmt::format("{:<{}} ", loaded.class_names[r], width);
    for (auto v : result.confusion[r]) out << fmt::format(" {:5d}", v);
    out << "\n";
  }
  if (mistakes.empty()) return;
  // The pairs of classes most often taken for one another.
  std::vector<std::tuple<int64_t, size_t, size_t>> pairs;
  for (size_t r = 0; r < result.confusion.size(); ++r)
    for (size_t c = 0; c < result.confusion[r].size(); ++c)
      if (r != c && result.confusion[r][c] > 0) pairs.emplace_back(result.confusion[r][c], r, c);
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  out << "\nmost confused (true -> predicted: images)\n";
  for (size_t i = 0; i < std::min<size_t>(pairs.size(), 5); ++i)
    out << fmt::format("  {} -> {}: {}\n", names[std::get<1>(pairs[i])],
                       names[std::get<2>(pairs[i])], std::get<0>(pairs[i]));
  const size_t shown = std::min<size_t>(mistakes.size(), 10);
  out << fmt::format(
      "\nmost confident mistakes ({} of {}; --json lists all): worth a look for wrong labels\n",
      shown, mistakes.size());
  for (size_t k = 0; k < shown; ++k) {
    const size_t i = mistakes[k];
    out << fmt::format("  {}: {} taken for {} ({:.1f}%)\n", path_of(i),
                       names[size_t(result.labels[i])], names[size_t(result.predicted[i])],
                       100.0 * result.confidence[i]);
  }
}

void add_evaluate_command(CLI::App& app) {
  auto args = std::make_shared<EvaluateArgs>();
  auto* cmd = app.add_subcommand(
      "evaluate",
      "Loss, top-1/top-5, per-class precision/recall/F1 and confusion matrix of a "
      "model folder on labelled images");
  cmd->add_option("model_dir", args->model_dir, "model folder written by `vtl train`")->required();
  cmd->add_option("data", args->data,
                  "class-folder tree, CSV of path,label, or a folder of train/ val/ test/ splits "
                  "(its test/ is used)")
      ->required();
  add_label_source_options(cmd, args->label_source);
  cmd->add_option("--batch-size,--batch", args->batch_size, "images per batch")
      ->capture_default_str();
  cmd->add_option("--workers", args->workers, "image loading threads")->capture_default_str();
  cmd->add_option("--report", args->report,
                  "also write an HTML report: per-class table, confusion matrix and the most "
                  "confident mistakes with thumbnails");
  cmd->add_option("--max-image-pixels", args->max_image_pixels,
                  "skip images with more pixels than this")
      ->capture_default_str();
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--amp", args->amp,
                  "autocast of the model: off, bf16 (faster on CPUs with bf16 instructions, "
                  "and on GPUs) or fp16 (CUDA only)")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print the metrics as JSON");
  cmd->add_option("--csv", args->csv,
                  "also write one row per image to this CSV file (- : standard output): "
                  "image,label,predicted,probability,correct");
  cmd->callback([args] { run_evaluate(*args); });
}

}  // namespace

VTL_COMMAND(31, add_evaluate_command);

}  // namespace vtl::cli

// vtl compare DATA --models resnet50,efficientnet_b0,mobilenet_v3_large,vgg16
//             [--weights-from catalogue|random|DIR] [--probe logreg|svm|knn] [--cv 5]
//             [--img-size PX] [--budget-ms X] [--device cpu|cuda[:N]] [--out DIR] [--json]

#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/core/text.h"
#include "vtl/data/dataset.h"
#include "vtl/embed/backbone_comparison.h"

namespace vtl::cli {
namespace {

struct CompareArgs {
  std::string data;
  std::string models = "resnet50,efficientnet_b0,mobilenet_v3_large,vgg16";
  embed::ComparisonOptions options;
  std::string out = "compare";
  bool json = false;
  data::LabelSource label_source;
};

void run_compare(CompareArgs args) {
  auto& options = args.options;
  options.models = split_list(args.models);
  options.out = args.out;
  if (!args.json) options.log = [](const std::string& line) { std::cerr << line << std::endl; };
  std::vector<std::string> classes;
  data::check_dataset_path(args.data);  // one image is not a dataset to compare on
  const auto items = embed::dataset_items(args.data, &classes, nullptr, args.label_source);
  const auto comparison = embed::compare_backbones(items, classes, options);
  if (args.json) {
    std::cout << comparison.to_json().dump() << "\n";
  } else {
    fmt::print("{} images, {} classes\n{}", comparison.images, comparison.classes.size(),
               comparison.table());
    fmt::print("table: {}/compare.json, chart: {}/compare.html, features cached in {}/features\n",
               args.out, args.out, args.out);
  }
  bool any_compared = false;
  for (const auto& candidate : comparison.candidates) any_compared |= !candidate.skipped();
  VTL_CHECK(any_compared,
            "no model could be compared; see the skipped lines for how to get weights, or use "
            "--weights-from random to compare architectures only");
}

void add_compare_command(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Which backbone fits your data? Linear-probe accuracy, speed and size side by side");
  cmd->add_option("data", args->data, "Class-folder tree or CSV list of labelled images")
      ->required();
  add_label_source_options(cmd, args->label_source);
  cmd->add_option("--models", args->models, "Comma-separated registered models")
      ->capture_default_str();
  cmd->add_option("--weights-from", args->options.weights_from,
                  "catalogue (each model's default weights in $VTL_HOME/weights), random, or a "
                  "folder of <model>.pth / .safetensors files")
      ->capture_default_str();
  cmd->add_option("--probe", args->options.probe, "Linear probe on the features: logreg, svm, knn")
      ->check(CLI::IsMember({"logreg", "svm", "knn"}))
      ->capture_default_str();
  cmd->add_option("--cv", args->options.folds, "Cross-validation folds")->capture_default_str();
  cmd->add_option("--img-size,--image-size", args->options.image_size,
                  "Input side in pixels (default: each weights' preset)");
  cmd->add_option("--budget-ms", args->options.budget_ms,
                  "Recommend only models at most this many ms/image at batch 1");
  cmd->add_option("--batch-size,--batch", args->options.batch_size, "Extraction batch size")
      ->capture_default_str();
  cmd->add_option("--latency-repeats", args->options.latency_repeats,
                  "Timed passes per batch size (median)")
      ->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "Seed of the folds and of random weights");
  cmd->add_option("--device", args->options.device,
                  "Where features are extracted and latencies measured: cpu, cuda or cuda:N")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Output folder (feature cache, compare.json, compare.html)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print the comparison as JSON");
  cmd->callback([args] { run_compare(*args); });
}

}  // namespace

VTL_COMMAND(43, add_compare_command);

}  // namespace vtl::cli

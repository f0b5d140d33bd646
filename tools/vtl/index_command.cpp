// vtl index build DATA --model NAME|MODEL_DIR --out INDEX [--factory Flat|HNSW32|IVF256,PQ32]
//                 [--metric cosine|l2] [--amp off|bf16] [--device cpu|cuda[:N]]
// vtl index build --features FEATURES_DIR --out INDEX
// vtl index add INDEX MORE_DATA [--device cpu|cuda[:N]]
// vtl index merge INDEX... --out MERGED
// vtl index remove INDEX [FILE|FOLDER]... [--id N]... [--dry-run]
// vtl index prune INDEX

#include <chrono>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base_weights.h"
#include "commands.h"
#include "index_selection.h"
#include "vtl/core/error.h"
#include "vtl/core/progress_line.h"
#include "vtl/core/stop_signals.h"
#include "vtl/data/image.h"
#include "vtl/embed/extract.h"
#include "vtl/models/device.h"
#include "vtl/models/precision.h"
#include "vtl/search/image_index.h"

namespace vtl::cli {
namespace {

struct IndexArgs {
  std::string data;
  std::string features;
  std::string model;
  std::string weights;
  uint64_t seed = 0;
  int image_size = 0;
  std::string layer = "avg_pool";
  std::string normalize = "none";
  std::string amp = "off";
  std::string device = "cpu";
  std::string out;
  std::string factory = "Flat";
  std::string metric = "cosine";
  int64_t batch = 32;
  bool json = false;
  // add
  std::string index;
  std::string more;
  // merge
  std::vector<std::string> parts;
  // remove
  std::vector<std::string> targets;
  std::vector<int64_t> ids;
  bool dry_run = false;
  data::LabelSource label_source;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// `left_out`: what the data listing left out (see embed::dataset_items).
void report(const search::AddReport& r, const std::vector<data::SkippedFile>& left_out,
            const std::string& dir, const char* verb, double seconds, bool json) {
  if (json) {
    auto files = [](const std::vector<data::SkippedFile>& list) {
      auto array = nlohmann::json::array();
      for (const auto& file : list)
        array.push_back({{"path", file.path.string()}, {"reason", file.reason}});
      return array;
    };
    std::cout << json_text({{"index", dir},
                            {"added", r.added},
                            {"duplicates", r.duplicates},
                            {"replaced", r.replaced},
                            {"unreadable", files(r.unreadable)},
                            {"left_out", files(left_out)},
                            {"total", r.total},
                            {"seconds", seconds}})
              << "\n";
    return;
  }
  print_left_out(dir, r.unreadable, "unreadable image", "unreadable images");
  if (r.replaced > 0)
    fmt::print(
        "{}: {} catalogued files hold other bytes than when they were indexed: their old "
        "entries were taken out (ids renumbered)\n",
        dir, r.replaced);
  fmt::print(
      "{}: {} {} images ({} duplicates of catalogued content, {} unreadable and {} other "
      "files left out), {} in total, {:.1f} s\n",
      dir, verb, r.added, r.duplicates, r.unreadable.size(), left_out.size(), r.total, seconds);
}

search::IndexOptions index_options(const IndexArgs& args) {
  search::IndexOptions options;
  options.factory = args.factory;
  options.metric = search::parse_metric(args.metric);
  options.batch_size = args.batch;
  if (!args.json) {
    auto progress = std::make_shared<ProgressLine>();
    options.progress = [progress](int64_t done, int64_t total) {
      progress->show("embedding: " + progress->counted(done, total, "images"), done == total);
    };
  }
  return options;
}

void run_build(const IndexArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  VTL_CHECK(!args.out.empty(), "missing --out INDEX_DIR");
  // Ctrl-C: stop after the batch in progress, with nothing written.
  StopSignals signals("stopping after this batch; no index is written");
  const auto options = index_options(args);
  search::AddReport result;
  std::vector<data::SkippedFile> left_out;
  if (!args.features.empty()) {
    VTL_CHECK(args.data.empty() && args.model.empty(),
              "--features replaces DATA and --model (the features folder says which model)");
    result = search::ImageIndex::build_from_features(args.out, embed::load_features(args.features),
                                                     options);
  } else {
    VTL_CHECK(!args.data.empty(), "missing DATA (or --features FEATURES_DIR)");
    VTL_CHECK(!args.model.empty(), "missing --model (a registry name or a trained model folder)");
    embed::BackboneOptions backbone;
    backbone.model = args.model;
    backbone.weights = base_weights_or_default(args.model, args.weights);
    backbone.seed = args.seed;
    backbone.image_size = args.image_size;
    const torch::Device device = models::parse_device(args.device);
    embed::FeatureExtractor extractor(embed::load_backbone(backbone), args.layer,
                                      args.normalize == "l2");
    extractor.to(device);
    extractor.set_amp(models::parse_precision(args.amp));
    if (!args.json) print_precision_note(extractor.spec().amp, extractor.device());
    const auto items = embed::dataset_items(args.data, nullptr, &left_out, args.label_source);
    if (!args.json) print_left_out(args.data, left_out);
    result = search::ImageIndex::build(args.out, extractor, items, options);
  }
  report(result, left_out, args.out, "indexed", seconds_since(start), args.json);
}

void run_add(const IndexArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  StopSignals signals("stopping after this batch; the index stays as it was");
  auto index = search::ImageIndex::open(args.index);
  const torch::Device device = models::parse_device(args.device);
  auto extractor = embed::extractor_for_spec(index.spec(), args.weights);
  extractor.to(device);
  auto options = index_options(args);
  std::vector<data::SkippedFile> left_out;
  const auto items = embed::dataset_items(args.more, nullptr, &left_out, args.label_source);
  if (!args.json) print_left_out(args.more, left_out);
  const auto result = search::ImageIndex::add(args.index, extractor, items, options);
  report(result, left_out, args.index, "added", seconds_since(start), args.json);
}

void run_merge(const IndexArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::filesystem::path> parts(args.parts.begin(), args.parts.end());
  const auto result = search::ImageIndex::merge(args.out, parts);
  if (args.json) {
    report(result, {}, args.out, "merged", seconds_since(start), args.json);
    return;
  }
  // No image was read: only content repeated between the indexes counts.
  fmt::print("{}: {} images from the indexes ({} repeated content, kept once), {:.1f} s\n",
             args.out, result.total, result.duplicates, seconds_since(start));
}

/// Prints what remove or prune took out (`gone`: prune's, whose files are gone) and the
/// `left` images of the index.
void report_removed(const IndexArgs& args, const std::vector<search::CatalogEntry>& removed,
                    int64_t left, bool gone, bool dry_run = false) {
  const size_t n = removed.size();
  const std::string what = fmt::format("{} image{}{}", n, n == 1 ? "" : "s",
                                       !gone    ? ""
                                       : n == 1 ? " whose file is gone"
                                                : " whose files are gone");
  if (args.json) {
    auto entries = nlohmann::json::array();
    for (const auto& entry : removed) entries.push_back({{"id", entry.id}, {"path", entry.path}});
    nlohmann::json summary = {{"index", args.index}, {"removed", entries}, {"total", left}};
    if (dry_run) summary["dry_run"] = true;
    std::cout << json_text(summary) << "\n";
    return;
  }
  for (const auto& entry : removed)
    std::cout << fmt::format("{} {}: {}\n", dry_run ? "would remove" : "removed", entry.id,
                             entry.path);
  if (dry_run) {
    std::cout << fmt::format("{}: {} would be taken out, {} left; nothing was changed\n",
                             args.index, what, left);
    return;
  }
  std::cout << fmt::format("{}: {} taken out, {} in total{}\n", args.index, what, left,
                           removed.empty() ? "" : " (ids renumbered)");
}

void run_remove(const IndexArgs& args) {
  const IndexSelection selection(args.targets, args.ids);
  int64_t size = 0;
  {
    const auto index = search::ImageIndex::open(args.index);
    size = index.size();
    auto entries = index.catalog().all();
    selection.check_each_selects_something(entries, args.index);
    if (args.dry_run) {
      std::vector<search::CatalogEntry> selected;
      for (auto& entry : entries)
        if (selection.selects(entry)) selected.push_back(std::move(entry));
      return report_removed(args, selected, size - int64_t(selected.size()), false, true);
    }
  }
  const auto removed = search::ImageIndex::remove(
      args.index, [&](const search::CatalogEntry& entry) { return selection.selects(entry); });
  report_removed(args, removed, size - int64_t(removed.size()), false);
}

void run_prune(const IndexArgs& args) {
  const auto removed = search::ImageIndex::prune(args.index);
  report_removed(args, removed, search::ImageIndex::open(args.index).size(), true);
}

void add_index_command(CLI::App& app) {
  auto args = std::make_shared<IndexArgs>();
  auto* cmd =
      app.add_subcommand("index", "Build or grow a similarity-search index (FAISS + SQLite)");
  cmd->require_subcommand(1);

  auto* build = cmd->add_subcommand("build", "Index the images of a dataset");
  build->add_option("data", args->data, "Class-folder tree or CSV list of path,label");
  add_label_source_options(build, args->label_source);
  build->add_option("--features", args->features,
                    "Index a finished `vtl extract` folder instead of embedding DATA");
  build->add_option("--model", args->model, "Registry name or trained model folder");
  build->add_option(
      "--weights", args->weights,
      "a catalogue name (resnet50.tv_in1k), a .pth/.safetensors file or random; default: the "
      "model's default weights when they are in the store, else random (with a warning)");
  build->add_option("--seed", args->seed, "Seed of the random initialisation");
  build->add_option("--img-size,--image-size", args->image_size, "Input side in pixels");
  build->add_option("--layer", args->layer, "Tap (default avg_pool)");
  build->add_option("--normalize", args->normalize, "none (default) or l2")
      ->check(CLI::IsMember({"none", "l2"}));
  build
      ->add_option("--amp", args->amp,
                   "off (default) or bf16: autocast of the backbone (queries use it too)")
      ->check(CLI::IsMember({"off", "bf16"}));
  build->add_option("--device", args->device, "cpu (default), cuda or cuda:N");
  build->add_option("--out", args->out, "Index folder to create")->required();
  build->add_option("--factory", args->factory,
                    "FAISS index factory: Flat (exact, default), HNSW32, IVF256,PQ32, ...");
  build->add_option("--metric", args->metric, "cosine (default) or l2")
      ->check(CLI::IsMember({"cosine", "l2"}));
  build->add_option("--batch-size,--batch", args->batch, "Images per forward pass (default 32)");
  build->add_flag("--json", args->json, "Print the summary as JSON");
  add_max_image_pixels_option(build);
  build->callback([args] { run_build(*args); });

  auto* add = cmd->add_subcommand(
      "add", "Add images to an index (same model; atomic: on error nothing changes)");
  add->add_option("index", args->index, "Index folder")->required();
  add->add_option("data", args->more, "Class-folder tree or CSV list")->required();
  add_label_source_options(add, args->label_source);
  add->add_option("--batch-size,--batch", args->batch, "Images per forward pass (default 32)");
  add->add_option("--device", args->device, "cpu (default), cuda or cuda:N");
  add->add_option("--weights", args->weights,
                  "Where the weights file or trained model folder that made the index is now, if "
                  "it moved (the same bytes)");
  add->add_flag("--json", args->json, "Print the summary as JSON");
  add_max_image_pixels_option(add);
  add->callback([args] { run_add(*args); });

  auto* merge = cmd->add_subcommand(
      "merge", "Merge index folders built with the same model and factory into a new one");
  merge->add_option("parts", args->parts, "Index folders, in id order")->required();
  merge->add_option("--out", args->out, "Index folder to create")->required();
  merge->add_flag("--json", args->json, "Print the summary as JSON");
  merge->callback([args] { run_merge(*args); });

  auto* remove = cmd->add_subcommand(
      "remove",
      "Take images out of an index: by file (its path, or its bytes while it exists), by "
      "folder (all indexed under it) or by --id (ids are renumbered; in place, atomic)");
  remove->add_option("index", args->index, "Index folder")->required();
  remove->add_option("targets", args->targets, "Image files or folders to take out");
  remove->add_option("--id", args->ids, "Vector id to take out (as search prints it); repeatable")
      ->check(CLI::NonNegativeNumber);
  remove->add_flag("--dry-run", args->dry_run, "Print what would be taken out; change nothing");
  remove->add_flag("--json", args->json, "Print the summary as JSON");
  remove->callback([args] { run_remove(*args); });

  auto* prune = cmd->add_subcommand(
      "prune", "Take out the images whose files are gone (ids are renumbered; in place, atomic)");
  prune->add_option("index", args->index, "Index folder")->required();
  prune->add_flag("--json", args->json, "Print the summary as JSON");
  prune->callback([args] { run_prune(*args); });
}

}  // namespace

VTL_COMMAND(44, add_index_command);

}  // namespace vtl::cli

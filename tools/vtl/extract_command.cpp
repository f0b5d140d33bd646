// vtl extract DATA --model NAME|MODEL_DIR [--weights ...] [--layer avg_pool] [--out DIR]
//             [--dtype f32|f16] [--normalize none|l2] [--batch B] [--device cpu|cuda[:N]]
//             [--amp off|bf16|fp16] [--shard i/n | --distributed]
// vtl extract --merge SHARD_DIR... --out DIR

#include <chrono>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base_weights.h"
#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/core/progress_line.h"
#include "vtl/data/image.h"
#include "vtl/dist/process_group.h"
#include "vtl/embed/extract.h"
#include "vtl/models/device.h"
#include "vtl/models/precision.h"

namespace vtl::cli {
namespace {

struct ExtractArgs {
  std::string data;
  std::string model;
  std::string weights;
  uint64_t seed = 0;
  int image_size = 0;
  std::string layer = "avg_pool";
  std::string out = "features";
  std::string dtype = "f32";
  std::string normalize = "none";
  int64_t batch = 32;
  std::string shard = "0/1";
  bool skip_bad = false;
  bool overwrite = false;
  bool json = false;
  std::vector<std::string> merge;
  bool distributed = false;
  std::string device = "cpu";
  std::string amp = "off";
  double dist_timeout = 0;
  std::string dist_store_file;
  data::LabelSource label_source;
};

void run_extract(const ExtractArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  if (!args.merge.empty()) {
    VTL_CHECK(args.data.empty(), "give either DATA or --merge, not both");
    std::vector<std::filesystem::path> shards(args.merge.begin(), args.merge.end());
    embed::merge_feature_shards(shards, args.out);
    auto merged = embed::load_features(args.out);
    if (args.json) {
      std::cout << nlohmann::json{{"out", args.out},
                                  {"rows", merged.features.size(0)},
                                  {"dim", merged.features.size(1)}}
                       .dump()
                << "\n";
    } else {
      fmt::print("merged {} shards: {} rows x {} into {}\n", shards.size(), merged.features.size(0),
                 merged.features.size(1), args.out);
    }
    return;
  }
  VTL_CHECK(!args.data.empty(), "missing DATA (a class-folder tree or a CSV list)");
  VTL_CHECK(!args.model.empty(), "missing --model (a registry name or a trained model folder)");
  VTL_CHECK(args.normalize == "none" || args.normalize == "l2",
            "--normalize must be none or l2, got '{}'", args.normalize);

  const torch::Device device = models::parse_device(args.device);
  std::shared_ptr<dist::ProcessGroup> group;
  if (args.distributed) {
    VTL_CHECK(args.shard == "0/1", "--distributed splits the images itself; drop --shard");
    group = dist::ProcessGroup::join(
        dist::group_options(args.dist_timeout, args.dist_store_file, "cpu"));
  }
  const bool writer = !group || group->is_writer();

  embed::BackboneOptions backbone;
  backbone.model = args.model;
  backbone.weights = base_weights_or_default(args.model, args.weights, writer);
  backbone.seed = args.seed;
  backbone.image_size = args.image_size;
  embed::FeatureExtractor extractor(embed::load_backbone(backbone), args.layer,
                                    args.normalize == "l2");
  if (device.is_cuda()) {
    VTL_CHECK(!group,
              "--device cuda with --distributed is not supported yet: run one "
              "process per GPU with --shard i/n and CUDA_VISIBLE_DEVICES, then --merge");
    extractor.to(device);
  }
  extractor.set_amp(models::parse_precision(args.amp));
  if (writer && !args.json) print_precision_note(extractor.spec().amp, extractor.device());

  embed::ExtractOptions options;
  options.batch_size = args.batch;
  options.dtype = embed::parse_feature_dtype(args.dtype);
  std::tie(options.shard_index, options.shard_count) = embed::parse_shard(args.shard);
  options.skip_bad = args.skip_bad;
  options.overwrite = args.overwrite;
  std::vector<data::SkippedFile> left_out;
  const auto items =
      embed::dataset_items(args.data, &options.classes, &left_out, args.label_source);
  if (!args.json && writer) print_left_out(args.data, left_out);
  std::optional<ProgressLine> progress;
  if (!args.json && writer) {
    progress.emplace();
    options.progress = [&](int64_t done, int64_t total) {
      progress->show("extract: " + progress->counted(done, total, "images"), done == total);
    };
  }
  const auto result =
      group ? embed::extract_features_distributed(extractor, items, args.out, options, *group)
            : embed::extract_features(extractor, items, args.out, options);
  if (!writer) return;  // rank 0 reports
  progress.reset();
  const auto& spec = extractor.spec();
  if (args.json) {
    std::cout << nlohmann::json{{"out", args.out},
                                {"rows", result.rows},
                                {"dim", spec.dim},
                                {"computed", result.computed_items},
                                {"resumed", result.resumed_items},
                                {"skipped", result.skipped},
                                {"left_out", left_out.size()},
                                {"seconds", seconds()}}
                     .dump()
              << "\n";
    return;
  }
  fmt::print(
      "{}: {} rows x {} ({}, {} {} layer {}{}) in {:.1f} s", args.out, result.rows, spec.dim,
      args.dtype, spec.model, spec.weights, spec.layer,
      spec.amp == models::Precision::f32 ? "" : ", " + models::to_string(spec.amp) + " autocast",
      seconds());
  if (result.resumed_items > 0) fmt::print("; {} images were already done", result.resumed_items);
  if (result.skipped > 0)
    fmt::print("; {} undecodable files listed in skipped.jsonl", result.skipped);
  fmt::print("\n");
}

void add_extract_command(CLI::App& app) {
  auto args = std::make_shared<ExtractArgs>();
  auto* cmd = app.add_subcommand(
      "extract",
      "Write feature vectors of a dataset: features.npy (NumPy), manifest.jsonl, features.json");
  cmd->add_option("data", args->data, "Class-folder tree or CSV list of path,label");
  add_label_source_options(cmd, args->label_source);
  cmd->add_option("--model", args->model, "Registry name (resnet50) or trained model folder");
  cmd->add_option(
      "--weights", args->weights,
      "a catalogue name (resnet50.tv_in1k), a .pth/.safetensors file or random; default: the "
      "model's default weights when they are in the store, else random (with a warning)");
  cmd->add_option("--seed", args->seed, "Seed of the random initialisation");
  cmd->add_option("--img-size,--image-size", args->image_size,
                  "Input side in pixels (default: the weights' preset)");
  cmd->add_option("--layer", args->layer,
                  "Tap: avg_pool (default), a stage name (pooled), pre_logits, logits");
  cmd->add_option("--out", args->out, "Output folder (default: features)");
  cmd->add_option("--dtype", args->dtype, "f32 (default) or f16")
      ->check(CLI::IsMember({"f32", "f16"}));
  cmd->add_option("--normalize", args->normalize, "none (default) or l2")
      ->check(CLI::IsMember({"none", "l2"}));
  cmd->add_option("--batch-size,--batch", args->batch, "Images per forward pass (default 32)");
  cmd->add_option("--device", args->device, "cpu (default), cuda or cuda:N");
  cmd->add_option("--amp", args->amp,
                  "off (default), bf16 or fp16 (CUDA): autocast of the backbone; vectors "
                  "stay float32. bf16 pays off on CPUs with bf16 instructions")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}));
  cmd->add_option("--shard", args->shard, "Do part i of n (i/n); merge with --merge");
  cmd->add_flag("--skip-bad", args->skip_bad,
                "List undecodable files in skipped.jsonl instead of stopping");
  cmd->add_flag("--overwrite", args->overwrite, "Replace features made with other settings");
  cmd->add_option("--merge", args->merge, "Merge finished shard folders into --out");
  cmd->add_flag("--distributed", args->distributed,
                "Split the images over the ranks torchrun's environment describes (RANK, "
                "WORLD_SIZE, MASTER_ADDR, MASTER_PORT); rank 0 merges into --out "
                "(docs/distributed.md)");
  cmd->add_option("--dist-timeout", args->dist_timeout,
                  "Seconds a rank waits for the others (default $VTL_DIST_TIMEOUT or 60)");
  cmd->add_option("--dist-store-file", args->dist_store_file,
                  "Meet through a file on a shared file system instead of MASTER_ADDR:PORT");
  cmd->add_flag("--json", args->json, "Print the summary as JSON");
  add_max_image_pixels_option(cmd);
  cmd->callback([args] { run_extract(*args); });
}

}  // namespace

VTL_COMMAND(40, add_extract_command);

}  // namespace vtl::cli

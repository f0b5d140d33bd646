// vtl export: a trained model folder or a pretrained network as an ONNX file, for ONNX
// Runtime, OpenCV's DNN module, TensorRT and other runtimes.

#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "classifier.h"
#include "commands.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/preprocessing.h"
#include "vtl/core/text.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/onnx_export.h"

namespace vtl::cli {
namespace {
namespace fs = std::filesystem;

struct ExportArgs {
  std::string model, weights, out;
  bool features = false;
  bool no_softmax = false;
  int64_t image_size = 0;
  int64_t batch_size = 1;
  bool dynamic_batch = false;
  bool json = false;
};

void run_export(const ExportArgs& args) {
  VTL_CHECK(!args.out.empty(), "no output file given (--out FILE.onnx)");
  std::error_code ec;
  VTL_CHECK(!std::filesystem::is_directory(args.out, ec) && args.out.back() != '/',
            "--out {}: a folder; give the file to write, such as {}", args.out,
            (std::filesystem::path(args.out) / "model.onnx").string());
  Classifier exportable = open_network(args.model, args.weights, !args.features);
  if (args.features) exportable.class_names.clear();
  const auto forward = args.features ? exportable.pooled_features : exportable.logits;
  exportable.module->eval();
  // Inference only: BatchNorm folded into the convolutions, one ONNX node less each.
  models::fold_batch_norms(*exportable.module);

  models::OnnxExportOptions options;
  options.image_size = args.image_size > 0 ? args.image_size : exportable.preprocessing.crop;
  options.batch_size = args.dynamic_batch ? 0 : args.batch_size;
  options.output_name = args.features ? "features" : "logits";
  if (!args.features && !args.no_softmax) options.softmax_name = "probabilities";
  Preprocessing preprocessing = exportable.preprocessing;
  if (options.image_size != preprocessing.crop) {
    preprocessing.resize = static_cast<int>(std::lround(
        options.image_size * double(preprocessing.resize) / double(preprocessing.crop)));
    preprocessing.crop = static_cast<int>(options.image_size);
  }
  nlohmann::json input = {{"name", options.input_name},
                          {"layout", "NCHW"},
                          {"channels", "RGB"},
                          {"scale", "pixel / 255, then (x - mean) / std"},
                          {"preprocessing", to_json(preprocessing)}};
  options.metadata = {{"vtl.architecture", exportable.architecture},
                      {"vtl.source", exportable.source},
                      {"vtl.input", input.dump()}};
  if (!exportable.class_names.empty())
    options.metadata.emplace_back("vtl.class_names", nlohmann::json(exportable.class_names).dump());

  const auto summary = models::export_onnx(forward, *exportable.module, args.out, options);

  // The same facts beside the file, for runtimes that do not read ONNX metadata (OpenCV's
  // DNN module): examples/onnx_opencv.cpp classifies images with them.
  nlohmann::json sidecar = {{"format", "vtl-onnx"},
                            {"onnx", fs::path(args.out).filename().string()},
                            {"architecture", exportable.architecture},
                            {"source", exportable.source},
                            {"input", input},
                            {"input_shape",
                             {options.batch_size > 0 ? options.batch_size : -1, 3,
                              options.image_size, options.image_size}},
                            {"outputs", {options.output_name}},
                            {"output_shape", summary.output_shape},
                            {"class_names", exportable.class_names}};
  if (!options.softmax_name.empty()) sidecar["outputs"].push_back(options.softmax_name);
  const std::string sidecar_path = args.out + ".json";
  write_file_atomically(sidecar_path, sidecar.dump(2) + "\n");

  auto shape_text = [](const std::vector<int64_t>& dims) {
    std::vector<std::string> parts;
    for (int64_t dim : dims) parts.push_back(dim < 0 ? "batch" : std::to_string(dim));
    return "[" + fmt::format("{}", fmt::join(parts, ", ")) + "]";
  };
  const std::string batch = options.batch_size > 0 ? std::to_string(options.batch_size) : "batch";
  if (args.json) {
    nlohmann::json json = sidecar;
    json["out"] = args.out;
    json["sidecar"] = sidecar_path;
    json["opset"] = 13;
    json["nodes"] = summary.nodes;
    json["parameters"] = summary.parameters;
    json["bytes"] = summary.bytes;
    std::cout << json_text(json, 2) << "\n";
    return;
  }
  std::cout << fmt::format("{}: {} ({}), ONNX opset 13, {} nodes, {} parameters, {:.1f} MiB\n",
                           args.out, exportable.architecture, exportable.source, summary.nodes,
                           with_thousands(summary.parameters), summary.bytes / 1048576.0);
  std::cout << fmt::format(
      "  input  {} [{}, 3, {}, {}]: RGB, pixel / 255, minus mean ({:.3f}, {:.3f}, {:.3f}), "
      "divided by std ({:.3f}, {:.3f}, {:.3f}); resize the shorter side to {}, centre crop {}\n",
      options.input_name, batch, options.image_size, options.image_size, preprocessing.mean[0],
      preprocessing.mean[1], preprocessing.mean[2], preprocessing.std[0], preprocessing.std[1],
      preprocessing.std[2], preprocessing.resize, preprocessing.crop);
  std::cout << fmt::format("  output {} {}{}\n", options.output_name,
                           shape_text(summary.output_shape),
                           args.features ? ": pooled features" : ": logits");
  if (!options.softmax_name.empty())
    std::cout << fmt::format("  output {} {}: softmax of the logits\n", options.softmax_name,
                             shape_text(summary.output_shape));
  std::cout << fmt::format(
      "  {}: the input's preprocessing{}, as JSON (also in the ONNX "
      "metadata)\n",
      sidecar_path,
      exportable.class_names.empty()
          ? std::string()
          : fmt::format(" and the {} class names", exportable.class_names.size()));
}

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand(
      "export",
      "Write a model as ONNX (ONNX Runtime, OpenCV DNN, TensorRT): a trained model "
      "folder, or a pretrained network");
  cmd->add_option("model", args->model,
                  "trained model folder (vtl train) or registry name (`vtl models`)")
      ->required();
  cmd->add_option("--weights", args->weights,
                  "registry models: catalogue name, .pth or .safetensors file, or random "
                  "(default: the model's default catalogue weights)");
  cmd->add_option("--out", args->out, "ONNX file to write (e.g. model.onnx)")->required();
  cmd->add_flag("--features", args->features,
                "export the base and its global average pooling: [batch, C] feature vectors "
                "(embeddings) instead of class scores");
  cmd->add_flag("--no-softmax", args->no_softmax, "only the logits, no probabilities output");
  cmd->add_option("--img-size,--image-size", args->image_size,
                  "input side in pixels (default: the model's crop size)");
  cmd->add_option("--batch-size,--batch", args->batch_size,
                  "images per call, fixed in the file (default 1)")
      ->check(positive());
  cmd->add_flag("--dynamic-batch", args->dynamic_batch,
                "any batch size (ONNX Runtime, TensorRT; OpenCV's DNN module 4.6 needs a fixed "
                "batch for EfficientNet and MobileNetV3)");
  cmd->add_flag("--json", args->json, "print the summary as JSON");
  cmd->callback([args] { run_export(*args); });
}

}  // namespace

VTL_COMMAND(35, add_export_command);

}  // namespace vtl::cli

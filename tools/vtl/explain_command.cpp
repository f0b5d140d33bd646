// vtl explain IMAGE|FOLDER... --model NAME|MODEL_DIR [--class NAME] [--out DIR]: Grad-CAM
// heatmaps over the images, showing where the network found the evidence for its class.

#include <filesystem>
#include <iostream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "classifier.h"
#include "commands.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/text.h"
#include "vtl/data/batch_reader.h"
#include "vtl/data/preprocess.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/device.h"
#include "vtl/models/grad_cam.h"

namespace vtl::cli {
namespace {
namespace fs = std::filesystem;

struct ExplainOptions {
  std::vector<std::string> images;
  std::string model, weights, class_name, out = "explain", device = "cpu";
  std::string class_names;  ///< --class-names FILE
  int batch = 8;
  bool json = false;
};

/// The network's input image (normalized [3,S,S]) with `heatmap` ([h,w] in [0,1]) laid over
/// it in the jet colour map; at least 224 pixels a side so small inputs stay visible. BGR.
cv::Mat overlay(const torch::Tensor& input, const torch::Tensor& heatmap, const Preprocessing& p) {
  const auto mean = torch::tensor({p.mean[0], p.mean[1], p.mean[2]}).view({3, 1, 1});
  const auto std = torch::tensor({p.std[0], p.std[1], p.std[2]}).view({3, 1, 1});
  const auto rgb = ((input.cpu() * std + mean) * 255.0)
                       .round()
                       .clamp(0, 255)
                       .to(torch::kUInt8)
                       .permute({1, 2, 0})
                       .contiguous();
  cv::Mat image(int(rgb.size(0)), int(rgb.size(1)), CV_8UC3, rgb.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
  const int side = std::max(224, bgr.cols);
  if (side != bgr.cols) cv::resize(bgr, bgr, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);

  const auto heat =
      (heatmap.cpu().to(torch::kFloat32) * 255.0).round().to(torch::kUInt8).contiguous();
  cv::Mat small(int(heat.size(0)), int(heat.size(1)), CV_8UC1, heat.data_ptr<uint8_t>());
  cv::Mat large, colours, blended;
  cv::resize(small, large, bgr.size(), 0, 0, cv::INTER_CUBIC);
  cv::applyColorMap(large, colours, cv::COLORMAP_JET);
  cv::addWeighted(bgr, 0.6, colours, 0.4, 0.0, blended);
  return blended;
}

/// "DIR/<stem>.gradcam.png", numbered when two images share a stem.
fs::path output_path(const fs::path& out, const fs::path& image, std::set<std::string>& used) {
  std::string name = image.stem().string() + ".gradcam.png";
  for (int n = 2; used.count(name); ++n)
    name = fmt::format("{}-{}.gradcam.png", image.stem().string(), n);
  used.insert(name);
  return out / name;
}

void run_explain(const ExplainOptions& options) {
  const torch::Device device = models::parse_device(options.device);
  const auto images = expand_image_arguments("vtl explain", options.images);
  VTL_CHECK(!images.empty(), "no images to explain");
  Classifier classifier = open_classifier(options.model, options.weights, options.class_names);
  int64_t chosen_class = -1;
  if (!options.class_name.empty()) {
    const auto& names = classifier.class_names;
    const auto it = std::find(names.begin(), names.end(), options.class_name);
    VTL_CHECK(it != names.end(), "--class {}: not one of the model's {} classes{}",
              options.class_name, names.size(), did_you_mean(options.class_name, names));
    chosen_class = it - names.begin();
  }
  classifier.module->eval();
  models::fold_batch_norms(*classifier.module);
  classifier.module->to(device);
  fs::create_directories(options.out);
  if (!options.json) std::cout << "model: " << classifier.description << "\n";

  data::BatchReader reader(images, size_t(options.batch), [&](const fs::path& path) {
    return data::load_eval_input(path, classifier.preprocessing);
  });
  std::set<std::string> used_names;
  nlohmann::json results = nlohmann::json::array();
  struct Explained {
    torch::Tensor input, heatmap, probabilities;
    int64_t class_id;
  };
  const size_t failures = answer_each_image(
      reader, images,
      [&](const data::ImageBatch& batch) {
        const auto inputs = batch.stacked();
        std::vector<int64_t> classes;
        if (chosen_class >= 0) classes.assign(size_t(inputs.size(0)), chosen_class);
        const auto cam =
            models::grad_cam(classifier.feature_map, classifier.head, inputs.to(device), classes);
        const auto probabilities = torch::softmax(cam.logits, 1);
        std::vector<Explained> out;
        for (int64_t i = 0; i < inputs.size(0); ++i)
          out.push_back({inputs[i], cam.heatmaps[i], probabilities[i], cam.classes[size_t(i)]});
        return out;
      },
      [&](const std::string& path, const Explained& explained) {
        const fs::path target = output_path(options.out, path, used_names);
        std::vector<uchar> png;
        cv::imencode(".png", overlay(explained.input, explained.heatmap, classifier.preprocessing),
                     png);
        write_file_atomically(
            target, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
        const int64_t predicted = explained.probabilities.argmax().item<int64_t>();
        const std::string& label = classifier.class_names.at(size_t(explained.class_id));
        const double p = explained.probabilities[explained.class_id].item<double>();
        results.push_back({{"path", path},
                           {"class", label},
                           {"class_id", explained.class_id},
                           {"probability", p},
                           {"predicted", classifier.class_names.at(size_t(predicted))},
                           {"heatmap", target.string()}});
        if (!options.json)
          std::cout << fmt::format(
              "{}: {} {:.2f}%{} -> {}\n", path, label, 100 * p,
              predicted == explained.class_id
                  ? ""
                  : fmt::format(" (predicted: {})", classifier.class_names.at(size_t(predicted))),
              target.string());
      },
      [&](const std::string& path, const std::string& error) {
        results.push_back({{"path", path}, {"error", error}});
      });
  if (options.json) std::cout << json_text(results, 2) << "\n";
  VTL_CHECK(failures == 0, "{} of {} images could not be read", failures, images.size());
}

void add_explain_command(CLI::App& app) {
  auto options = std::make_shared<ExplainOptions>();
  auto* command = app.add_subcommand(
      "explain",
      "Grad-CAM heatmaps: where in each image the network found the evidence for its class");
  command->add_option("images", options->images, "Image files or folders")->required();
  command
      ->add_option("--model", options->model,
                   "Registered model name (see `vtl models`) or a model folder from `vtl train`")
      ->required();
  command->add_option("--weights", options->weights,
                      "Catalogue name or .pth/.safetensors file (registered models); default: "
                      "the architecture's default catalogue weights");
  add_class_names_option(command, options->class_names);
  command->add_option("--class", options->class_name,
                      "Explain this class for every image (default: each image's prediction)");
  command->add_option("--out", options->out, "Folder for the heatmap PNGs")->default_val("explain");
  command->add_option("--batch-size,--batch", options->batch, "Images per forward pass")
      ->default_val(8)
      ->check(positive());
  command->add_option("--device", options->device, "cpu, cuda or cuda:N")->default_val("cpu");
  command->add_flag("--json", options->json, "Print the results as JSON");
  add_max_image_pixels_option(command);
  command->callback([options] { run_explain(*options); });
}

}  // namespace

VTL_COMMAND(22, add_explain_command);

}  // namespace vtl::cli

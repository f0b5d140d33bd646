// vtl predict IMAGE... --model NAME|MODEL_DIR [--weights NAME|FILE] [--top K] [--json]

#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/data/image.h"
#include "vtl/data/preprocess.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/pretrained.h"

namespace vtl::cli {
namespace {

struct PredictOptions {
  std::vector<std::string> images;
  std::string model;
  std::string weights;
  int top = 5;
  bool json = false;
};

/// A ready classifier: images [N,3,H,W] -> logits [N,K], with what it needs around it.
struct Classifier {
  std::function<torch::Tensor(torch::Tensor)> logits;
  Preprocessing preprocessing;
  std::vector<std::string> class_names;
  std::string description;
};

Classifier open_classifier(const PredictOptions& options) {
  if (models::is_model_folder(options.model)) {
    VTL_CHECK(options.weights.empty(),
              "--weights does not apply to a trained model folder ({} has its own weights)",
              options.model);
    auto loaded = models::load_model_folder(options.model);
    auto model = loaded.model;
    models::fold_batch_norms(*model);  // eval mode from here on: inference only
    return {[model](torch::Tensor x) mutable { return model->forward(x); }, loaded.preprocessing,
            loaded.class_names,
            fmt::format("{} ({} classes, trained model folder {})", loaded.architecture,
                        loaded.class_names.size(), options.model)};
  }
  if (std::filesystem::is_directory(options.model)) {
    fail("{} is a folder but not a trained model folder (no model.json)", options.model);
  }
  auto pretrained = models::load_pretrained(options.model, options.weights);
  VTL_CHECK(!pretrained.class_names.empty(),
            "the weights {} carry no class names for their classifier, so predictions cannot "
            "be named; use `vtl extract` for features instead",
            pretrained.weights);
  auto model = pretrained.model;
  model->eval();
  models::fold_batch_norms(*model);
  return {[model](torch::Tensor x) mutable { return model->forward(x); }, pretrained.preprocessing,
          pretrained.class_names,
          fmt::format("{} with weights {}", options.model, pretrained.weights)};
}

void run_predict(const PredictOptions& options) {
  Classifier classifier = open_classifier(options);
  torch::NoGradGuard no_grad;
  data::DecodeOptions decode;
  decode.min_short_side = classifier.preprocessing.resize;
  nlohmann::json results = nlohmann::json::array();
  int failures = 0;
  if (!options.json) std::cout << "model: " << classifier.description << "\n";
  for (const auto& image_path : options.images) {
    torch::Tensor input;
    try {
      input =
          data::eval_transform(data::load_image_rgb(image_path, decode), classifier.preprocessing)
              .unsqueeze(0);
    } catch (const vtl::Error& e) {
      std::cerr << "vtl: error: " << e.what() << "\n";
      ++failures;
      results.push_back({{"path", image_path}, {"error", e.what()}});
      continue;
    }
    auto probabilities = torch::softmax(classifier.logits(input), 1)[0];
    const int64_t k = std::min<int64_t>(options.top, probabilities.size(0));
    auto [values, indices] = probabilities.topk(k);
    nlohmann::json predictions = nlohmann::json::array();
    if (!options.json) std::cout << image_path << "\n";
    for (int64_t i = 0; i < k; ++i) {
      const int64_t id = indices[i].item<int64_t>();
      const double p = values[i].item<double>();
      const std::string& label = classifier.class_names.at(static_cast<size_t>(id));
      predictions.push_back({{"class_id", id}, {"label", label}, {"probability", p}});
      if (!options.json)
        std::cout << fmt::format("  {:>2}. {:<32} {:6.2f}%\n", i + 1, label, 100 * p);
    }
    results.push_back({{"path", image_path}, {"predictions", predictions}});
  }
  if (options.json) std::cout << json_text(results, 2) << "\n";
  VTL_CHECK(failures == 0, "{} of {} images could not be read", failures, options.images.size());
}

void add_predict_command(CLI::App& app) {
  auto options = std::make_shared<PredictOptions>();
  auto* command = app.add_subcommand(
      "predict", "Classify images with a pretrained model or a trained model folder");
  command->add_option("images", options->images, "Image files (jpg, png, bmp, webp, tif)")
      ->required();
  command
      ->add_option("--model", options->model,
                   "Registered model name (see `vtl models`) or a model folder from `vtl train`")
      ->required();
  command->add_option("--weights", options->weights,
                      "Catalogue name (see `vtl weights list`) or a .pth/.safetensors file; "
                      "default: the architecture's default catalogue weights");
  command->add_option("--top", options->top, "How many classes to show per image")
      ->default_val(5)
      ->check(CLI::PositiveNumber);
  command->add_flag("--json", options->json, "Print the predictions as JSON");
  command->add_option_function<int64_t>(
      "--max-image-pixels", [](int64_t pixels) { data::set_default_max_pixels(pixels); },
      "Refuse images with more pixels than this (default 400000000)");
  command->callback([options] { run_predict(*options); });
}

VTL_COMMAND(20, add_predict_command);

}  // namespace
}  // namespace vtl::cli

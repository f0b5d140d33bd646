// vtl predict IMAGE|FOLDER... --model NAME|MODEL_DIR [--weights NAME|FILE] [--top K]
//             [--batch B] [--device cpu|cuda] [--amp off|bf16|fp16] [--json]
//             [--csv FILE [--csv-image path|name|stem] [--csv-probabilities]]
// vtl predict --model MODEL_DIR --csv FILE --csv-like sample_submission.csv

#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "classifier.h"
#include "commands.h"
#include "prediction_csv.h"
#include "vtl/core/error.h"
#include "vtl/core/progress_line.h"
#include "vtl/core/stop_signals.h"
#include "vtl/data/batch_reader.h"
#include "vtl/data/dataset.h"
#include "vtl/data/preprocess.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/device.h"
#include "vtl/models/precision.h"

namespace vtl::cli {
namespace {

namespace fs = std::filesystem;

struct PredictOptions {
  std::vector<std::string> images;
  std::string model;
  std::string weights;
  std::string class_names;  ///< --class-names FILE
  int top = 5;
  int batch = 16;
  std::string device = "cpu";
  std::string amp = "off";
  bool tta = false;
  bool json = false;
  PredictionCsvOptions csv;
};

void run_predict(const PredictOptions& options) {
  const torch::Device device = models::parse_device(options.device);
  const models::Precision precision = models::parse_precision(options.amp);
  models::check_precision_supported(precision, device);
  VTL_CHECK(options.csv.like.empty() || options.images.empty(),
            "--csv-like lists the images to classify: leave out the image arguments");
  VTL_CHECK(!options.csv.like.empty() || !options.images.empty(),
            "no images: give image files or folders (or --csv FILE --csv-like SAMPLE)");
  auto images = expand_image_arguments("vtl predict", options.images);
  VTL_CHECK(!images.empty() || !options.csv.like.empty(), "no images to classify");

  Classifier classifier = open_classifier(options.model, options.weights, options.class_names);
  PredictionCsv csv(options.csv, classifier.class_names);
  csv.check_stdout_is_free(options.json);
  if (csv.follows_sample()) images = csv.sample_images();
  VTL_CHECK(!images.empty(), "no images to classify");
  classifier.module->eval();
  models::fold_batch_norms(*classifier.module);
  classifier.module->to(device);
  // Ctrl-C with --csv: stop before the next batch and leave no partial file.
  std::optional<StopSignals> signals;
  if (csv.enabled()) signals.emplace("stopping after this batch; the CSV is not written");
  // With --csv the table is the answer: the terminal shows progress instead of every image.
  const bool print_each = !options.json && !csv.enabled();
  std::optional<ProgressLine> progress;
  if (csv.enabled() && !options.json) progress.emplace();
  size_t answered = 0;
  const auto report = [&] {
    ++answered;
    if (progress)
      progress->show(
          "predict: " + progress->counted(int64_t(answered), int64_t(images.size()), "images"),
          answered == images.size());
  };
  if (!options.json) {
    (csv.on_stdout() ? std::cerr : std::cout)
        << "model: " << classifier.description << " on " << device.str() << std::endl;
    print_precision_note(precision, device);
  }

  torch::NoGradGuard no_grad;
  nlohmann::json results = nlohmann::json::array();
  data::BatchReader reader(images, size_t(options.batch), [&](const fs::path& path) {
    return data::load_eval_input(path, classifier.preprocessing);
  });
  const int64_t k = std::min<int64_t>(options.top, int64_t(classifier.class_names.size()));
  const size_t failures = answer_each_image(
      reader, images,
      [&](const data::ImageBatch& batch) {
        const models::AutocastScope autocast(precision, device);
        const auto inputs = batch.stacked().to(device);
        auto probabilities = torch::softmax(classifier.logits(inputs).to(torch::kFloat32), 1);
        if (options.tta) {
          // Test-time augmentation: the mean with the mirror image's probabilities.
          const auto mirrored = classifier.logits(inputs.flip({3})).to(torch::kFloat32);
          probabilities = (probabilities + torch::softmax(mirrored, 1)) / 2;
        }
        return probabilities.cpu();
      },
      [&](const std::string& path, const torch::Tensor& probabilities) {
        auto [values, indices] = probabilities.topk(k);
        nlohmann::json predictions = nlohmann::json::array();
        if (print_each) std::cout << path << "\n";
        for (int64_t j = 0; j < k; ++j) {
          const int64_t id = indices[j].item<int64_t>();
          const double p = values[j].item<double>();
          const std::string& label = classifier.class_names.at(static_cast<size_t>(id));
          predictions.push_back({{"class_id", id}, {"label", label}, {"probability", p}});
          if (print_each)
            std::cout << fmt::format("  {:>2}. {:<32} {:6.2f}%\n", j + 1, label, 100 * p);
        }
        if (print_each) std::cout.flush();
        if (options.json) results.push_back({{"path", path}, {"predictions", predictions}});
        const auto row = probabilities.contiguous();
        csv.add(path,
                std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel()));
        report();
      },
      [&](const std::string& path, const std::string& error) {
        if (options.json) results.push_back({{"path", path}, {"error", error}});
        report();
      });
  if (options.json) std::cout << json_text(results, 2) << "\n";
  progress.reset();
  csv.write();
  VTL_CHECK(failures == 0, "{} of {} images could not be read", failures, images.size());
}

void add_predict_command(CLI::App& app) {
  auto options = std::make_shared<PredictOptions>();
  auto* command = app.add_subcommand(
      "predict", "Classify images with a pretrained model or a trained model folder");
  command->add_option(
      "images", options->images,
      "Image files (jpg, png, bmp, webp, tif, gif), folders (every image under them) "
      "or CSV lists of images");
  command
      ->add_option("--model", options->model,
                   "Registered model name (see `vtl models`) or a model folder from `vtl train`")
      ->required();
  command->add_option("--weights", options->weights,
                      "Catalogue name (see `vtl weights list`) or a .pth/.safetensors file; "
                      "default: the architecture's default catalogue weights");
  add_class_names_option(command, options->class_names);
  command->add_option("--top,-k", options->top, "How many classes to show per image")
      ->default_val(5)
      ->check(positive());
  command->add_option("--batch-size,--batch", options->batch, "Images per forward pass")
      ->default_val(16)
      ->check(positive());
  command->add_option("--device", options->device, "cpu, cuda or cuda:N")->default_val("cpu");
  command
      ->add_option("--amp", options->amp,
                   "Autocast precision: off, bf16 (CPU or CUDA) or fp16 (CUDA only)")
      ->default_val("off");
  command->add_flag("--tta", options->tta,
                    "Test-time augmentation: average with the horizontally mirrored image "
                    "(two forward passes)");
  command->add_flag("--json", options->json, "Print the predictions as JSON");
  add_prediction_csv_options(command, options->csv, /*with_probabilities=*/true);
  add_max_image_pixels_option(command);
  command->callback([options] { run_predict(*options); });
}

VTL_COMMAND(20, add_predict_command);

}  // namespace
}  // namespace vtl::cli

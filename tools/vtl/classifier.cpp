#include "classifier.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/pretrained.h"

namespace vtl::cli {

Classifier open_network(const std::string& model_name, const std::string& weights,
                        bool include_top) {
  if (models::is_model_folder(model_name)) {
    VTL_CHECK(weights.empty(),
              "--weights does not apply to a trained model folder ({} has its own weights)",
              model_name);
    auto loaded = models::load_model_folder(model_name);
    auto model = loaded.model;
    return {model.ptr(),
            [model](const torch::Tensor& x) mutable { return model->forward(x); },
            [model](const torch::Tensor& x) mutable { return model->base->forward_features(x); },
            [model](const torch::Tensor& map) mutable {
              return model->forward_head(map.mean({2, 3}));
            },
            [model](const torch::Tensor& x) mutable { return model->features(x); },
            loaded.preprocessing,
            loaded.class_names,
            int64_t(loaded.class_names.size()),
            loaded.architecture,
            "trained model folder " + model_name,
            fmt::format("{} ({} classes, trained model folder {})", loaded.architecture,
                        loaded.class_names.size(), model_name)};
  }
  if (std::filesystem::is_directory(model_name)) {
    fail("{} is a folder but not a trained model folder (no model.json)", model_name);
  }
  auto pretrained = models::load_pretrained_as_saved(model_name, weights, include_top);
  auto model = pretrained.model;
  return {model.ptr(),
          [model](const torch::Tensor& x) mutable { return model->forward(x); },
          [model](const torch::Tensor& x) mutable { return model->forward_features(x); },
          [model](const torch::Tensor& map) mutable { return model->forward_head(map); },
          [model](const torch::Tensor& x) mutable {
            return model->forward_features(x).mean({2, 3});
          },
          pretrained.preprocessing,
          include_top ? pretrained.class_names : std::vector<std::string>{},
          include_top ? model->num_classes() : 0,
          model_name,
          "weights " + pretrained.weights,
          fmt::format("{} with weights {}", model_name, pretrained.weights)};
}

namespace {

/// The non-empty lines of `file`, trimmed: one class name each.
std::vector<std::string> read_class_names(const std::string& file) {
  std::istringstream lines(read_file(file));
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    names.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
  }
  return names;
}

}  // namespace

Classifier open_classifier(const std::string& model_name, const std::string& weights,
                           const std::string& class_names_file) {
  Classifier classifier = open_network(model_name, weights);
  if (!class_names_file.empty()) {
    VTL_CHECK(!models::is_model_folder(model_name),
              "--class-names is for weights files: the model folder {} names its classes",
              model_name);
    auto names = read_class_names(class_names_file);
    VTL_CHECK(int64_t(names.size()) == classifier.num_classes,
              "{}: {} class names for the {} outputs of the classifier in the {}", class_names_file,
              names.size(), classifier.num_classes, classifier.source);
    classifier.class_names = std::move(names);
  }
  VTL_CHECK(!classifier.class_names.empty(),
            "the {} carry no class names for the {} outputs of their classifier, so "
            "predictions cannot be named: give them with --class-names FILE (one per line, "
            "in output order), or use `vtl extract` for features",
            classifier.source, classifier.num_classes);
  return classifier;
}

void add_class_names_option(CLI::App* command, std::string& file) {
  command->add_option("--class-names", file,
                      "With a weights file: a text file naming the classifier's outputs, one "
                      "per line in output order (a network fine-tuned elsewhere)");
}

}  // namespace vtl::cli

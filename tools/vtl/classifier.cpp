#include "classifier.h"

#include <filesystem>

#include <fmt/format.h>

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
            loaded.architecture,
            "trained model folder " + model_name,
            fmt::format("{} ({} classes, trained model folder {})", loaded.architecture,
                        loaded.class_names.size(), model_name)};
  }
  if (std::filesystem::is_directory(model_name)) {
    fail("{} is a folder but not a trained model folder (no model.json)", model_name);
  }
  auto pretrained =
      models::load_pretrained(model_name, weights, models::ModelOptions().include_top(include_top));
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
          model_name,
          "weights " + pretrained.weights,
          fmt::format("{} with weights {}", model_name, pretrained.weights)};
}

Classifier open_classifier(const std::string& model_name, const std::string& weights) {
  Classifier classifier = open_network(model_name, weights);
  VTL_CHECK(!classifier.class_names.empty(),
            "the {} carry no class names for their classifier, so predictions cannot be named; "
            "use `vtl extract` for features instead",
            classifier.source);
  return classifier;
}

}  // namespace vtl::cli

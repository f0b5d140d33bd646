#include "classifier.h"

#include <filesystem>

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/pretrained.h"

namespace vtl::cli {

Classifier open_classifier(const std::string& model_name, const std::string& weights) {
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
            loaded.preprocessing,
            loaded.class_names,
            fmt::format("{} ({} classes, trained model folder {})", loaded.architecture,
                        loaded.class_names.size(), model_name)};
  }
  if (std::filesystem::is_directory(model_name)) {
    fail("{} is a folder but not a trained model folder (no model.json)", model_name);
  }
  auto pretrained = models::load_pretrained(model_name, weights);
  VTL_CHECK(!pretrained.class_names.empty(),
            "the weights {} carry no class names for their classifier, so predictions cannot "
            "be named; use `vtl extract` for features instead",
            pretrained.weights);
  auto model = pretrained.model;
  return {model.ptr(),
          [model](const torch::Tensor& x) mutable { return model->forward(x); },
          [model](const torch::Tensor& x) mutable { return model->forward_features(x); },
          [model](const torch::Tensor& map) mutable { return model->forward_head(map); },
          pretrained.preprocessing,
          pretrained.class_names,
          fmt::format("{} with weights {}", model_name, pretrained.weights)};
}

}  // namespace vtl::cli

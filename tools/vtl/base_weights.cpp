#include "base_weights.h"

#include <iostream>

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/registry.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/store.h"

namespace vtl::cli {

std::string base_weights_or_default(const std::string& model, const std::string& weights,
                                    bool say) {
  // A folder (a model folder, or one the command refuses with its own reason) has no
  // catalogue weights.
  std::error_code ec;
  if (weights == "imagenet" && !model.empty() && !std::filesystem::is_directory(model, ec)) {
    // Keras' weights="imagenet": the architecture's default catalogue entry, by its name.
    models::model_info(model);
    for (const auto* entry : weights::weights_for(model))
      if (entry->is_default) return entry->name;
    fail("no ImageNet weights for {} are in the catalogue (`vtl weights list`)", model);
  }
  if (!weights.empty() || model.empty() || std::filesystem::is_directory(model, ec)) return weights;
  models::model_info(model);  // an unknown name fails here, with close names
  const weights::PretrainedWeights* published = nullptr;
  for (const auto* entry : weights::weights_for(model))
    if (entry->is_default) published = entry;
  if (const auto stored = published ? weights::locate_weights(*published) : std::nullopt) {
    weights::check_stored_weights(*published, *stored);
    if (say)
      std::cerr << fmt::format("vtl: {} starts from its pretrained weights {} (in the store)\n",
                               model, published->name);
    return published->name;
  }
  const std::string how =
      published ? fmt::format(
                      "`vtl weights fetch {}` puts them in {} (or `vtl weights import "
                      "FILE --as {}`); ",
                      published->name, weights::weights_dir().string(), published->name)
                : fmt::format("no weights for {} are published in the catalogue; ", model);
  if (say)
    std::cerr << fmt::format(
        "vtl: warning: no pretrained weights for {}: it starts from random values, whose "
        "features are of no use for a frozen base or for search. {}--weights FILE takes a .pth "
        "or .safetensors file, and --weights random starts from random values without this "
        "warning\n",
        model, how);
  return "random";
}

}  // namespace vtl::cli

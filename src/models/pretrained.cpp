#include "vtl/models/pretrained.h"

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/models/registry.h"
#include "vtl/models/timm_names.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/store.h"
#include "vtl/weights/weights_file.h"

namespace vtl::models {
namespace {

namespace fs = std::filesystem;

bool looks_like_path(const std::string& weights) {
  auto ends_with = [&](const char* suffix) {
    const std::string s = suffix;
    return weights.size() >= s.size() &&
           weights.compare(weights.size() - s.size(), s.size(), s) == 0;
  };
  return weights.find('/') != std::string::npos || ends_with(".pth") || ends_with(".pt") ||
         ends_with(".bin") || ends_with(".safetensors") || ends_with(".ckpt");
}

/// Output count of the classifier stored in the file, or -1 when the file has none.
int64_t file_classes(const weights::StateDict& state_dict, const std::string& prefix) {
  auto it = state_dict.find(prefix + ".weight");
  if (it == state_dict.end() || it->second.dim() < 1) return -1;
  return it->second.size(0);
}

std::string how_to_get(const weights::PretrainedWeights& entry) {
  return fmt::format(
      "the weights {} are not in the store ({}); run `vtl weights fetch {}`, or download {} "
      "and run `vtl weights import FILE --as {}`",
      entry.name, (weights::weights_dir() / entry.file_name).string(), entry.name, entry.url,
      entry.name);
}

}  // namespace

void check_weights_for_architecture(const std::string& arch, const weights::StateDict& state_dict,
                                    const std::string& file) {
  weights::StateDict renamed = state_dict;  // tensors are shared, not copied
  rename_timm_keys(arch, renamed);
  Model probe = create_model(arch, ModelOptions());
  const std::string prefix = probe->classifier_prefix();
  const int64_t classes = file_classes(renamed, prefix);
  if (classes > 0 && classes != probe->num_classes()) {
    probe = create_model(arch, ModelOptions().num_classes(classes));
  }
  try {
    weights::load_state_dict(*probe, renamed,
                             weights::LoadOptions().source(file).allow_unexpected(classes < 0));
  } catch (const Error& e) {
    fail("{} does not hold {} weights: {}", file, arch, e.what());
  }
}

namespace {

/// load_pretrained; `classes_from_weights`: the classifier takes the file's output count.
PretrainedModel load(const std::string& arch, const std::string& weights_name,
                     const ModelOptions& options, bool classes_from_weights) {
  const ModelInfo& info = model_info(arch);  // unknown architectures fail here, with hints
  PretrainedModel out;
  bool from_catalogue = false;
  const weights::PretrainedWeights* entry = nullptr;
  if (weights_name == "random") {
    out.model = create_model(arch, options);
    out.weights = "random";
    out.preprocessing.crop = static_cast<int>(info.default_input_size);
    out.preprocessing.resize = static_cast<int>(info.default_input_size * 256 / 224);
    return out;
  }
  if (!weights_name.empty() && looks_like_path(weights_name)) {
    out.file = weights_name;
    out.weights = weights_name;
    VTL_CHECK(fs::is_regular_file(out.file), "weights file {} does not exist", weights_name);
    out.preprocessing.crop = static_cast<int>(info.default_input_size);
    out.preprocessing.resize = static_cast<int>(info.default_input_size * 256 / 224);
  } else {
    // "imagenet" (Keras' name) or nothing: the architecture's default entry.
    entry = &weights::find_weights(
        weights_name.empty() || weights_name == "imagenet" ? arch : weights_name);
    VTL_CHECK(entry->architecture == arch,
              "the weights {} are for {}, not {}; `vtl weights list` shows the weights of each "
              "architecture",
              entry->name, entry->architecture, arch);
    auto located = weights::locate_weights(*entry);
    VTL_CHECK(located.has_value(), "{}", how_to_get(*entry));
    weights::check_stored_weights(*entry, *located);
    out.file = *located;
    out.weights = entry->name;
    out.preprocessing = entry->preprocessing;
    from_catalogue = true;
  }

  weights::WeightsFileInfo file_info;
  weights::StateDict state_dict = weights::load_weights_file(out.file, &file_info);
  const std::string renamed = rename_timm_keys(arch, state_dict);
  out.model = create_model(arch, options);
  const std::string prefix = out.model->classifier_prefix();
  const int64_t stored_classes = file_classes(state_dict, prefix);
  ModelOptions built = options;
  if (options.include_top() && classes_from_weights && stored_classes > 0 &&
      stored_classes != options.num_classes()) {
    built.num_classes(stored_classes);
    out.model = create_model(arch, built);
  }

  weights::LoadOptions load;
  load.source(out.file.string());
  if (!options.include_top()) {
    // The file's classifier has nowhere to go; any other tensor the base lacks means the
    // file is for another architecture (resnet34's into resnet18) and is refused.
    // The whole head goes (vgg16's classifier.0 and .3 as well as its classifier.6).
    load.skip_prefix(prefix.substr(0, prefix.find('.')));
  } else if (stored_classes != built.num_classes()) {
    load.skip_prefix(prefix);  // fresh classifier for another number of classes
  }
  out.report = weights::load_state_dict(*out.model, state_dict, load);

  const bool published_head = options.include_top() && load.skip_prefix().empty();
  if (published_head && stored_classes == 1000 &&
      (from_catalogue ? entry->categories == "imagenet-1k" : true)) {
    out.class_names = weights::imagenet_classes();
  }
  if (!file_info.unwrapped_key.empty()) {
    out.report.notes.push_back(fmt::format("{} is a checkpoint; used the state dict under '{}'",
                                           out.file.string(), file_info.unwrapped_key));
  }
  if (!renamed.empty()) out.report.notes.push_back(renamed);
  if (file_info.stripped_module_prefix) {
    out.report.notes.push_back(fmt::format(
        "removed the 'module.' prefix (DataParallel) from the keys of {}", out.file.string()));
  }
  return out;
}

}  // namespace

PretrainedModel load_pretrained(const std::string& arch, const std::string& weights,
                                const ModelOptions& options) {
  return load(arch, weights, options, /*classes_from_weights=*/false);
}

PretrainedModel load_pretrained_as_saved(const std::string& arch, const std::string& weights,
                                         bool include_top) {
  return load(arch, weights, ModelOptions().include_top(include_top),
              /*classes_from_weights=*/true);
}

Model create_pretrained(const std::string& arch, const std::string& weights,
                        const ModelOptions& options) {
  return load_pretrained(arch, weights, options).model;
}

}  // namespace vtl::models

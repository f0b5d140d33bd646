#include "vtl/models/model_folder.h"

#include <fmt/format.h>

#include "core/json_document.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/registry.h"
#include "vtl/weights/safetensors.h"

namespace vtl::models {
namespace fs = std::filesystem;

namespace {
constexpr const char* kFormat = "vtl-model";
constexpr int kVersion = 1;
}  // namespace

void save_model_folder(const fs::path& dir, TransferModel& model, const ModelFolderInfo& info) {
  VTL_CHECK(static_cast<int64_t>(info.class_names.size()) == model->num_classes(),
            "{}: {} class names for a head with {} outputs", dir.string(), info.class_names.size(),
            model->num_classes());
  VTL_CHECK(!has_folded_batch_norms(*model),
            "{}: the model's BatchNorm layers are folded into its convolutions "
            "(fold_batch_norms, for inference only), so its weights are no longer the "
            "architecture's; save the model folder before folding",
            dir.string());
  std::error_code ec;
  fs::create_directories(dir, ec);
  VTL_CHECK(!ec, "{}: cannot create the model folder: {}", dir.string(), ec.message());

  // save_safetensors writes to a temporary name and renames it into place.
  weights::save_safetensors(dir / "model.safetensors", model->export_state_dict(),
                            {{"format", "pt"}, {"architecture", model->architecture()}});

  nlohmann::json json;
  json["format"] = kFormat;
  json["version"] = kVersion;
  json["architecture"] = model->architecture();
  json["head"] = {{"prefix", model->head_prefix()},
                  {"num_features", model->num_features()},
                  {"num_classes", model->num_classes()},
                  {"dropout", model->dropout_rate()},
                  {"pooling", "avg"}};
  json["class_names"] = info.class_names;
  json["preprocessing"] = to_json(info.preprocessing);
  json["base_weights"] = info.base_weights;
  json["training"] = info.training;
  write_file_atomically(dir / "model.json", json.dump(2) + "\n");
}

bool is_model_folder(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::exists(dir / "model.json", ec);
}

LoadedModel load_model_folder(const fs::path& dir) {
  const auto json_path = dir / "model.json";
  std::error_code ec;
  VTL_CHECK(fs::is_directory(dir, ec), "{}: no such model folder", dir.string());
  VTL_CHECK(fs::exists(json_path, ec),
            "{}: not a model folder (no model.json; `vtl train --out` writes one)", dir.string());
  LoadedModel loaded;
  int64_t num_classes = 0;
  double dropout = 0.0;
  try {
    loaded.json = parse_json_document(read_file(json_path), json_path.string());
    VTL_CHECK(loaded.json.value("format", std::string()) == kFormat,
              "{}: not a vtl model description (format is not '{}')", json_path.string(), kFormat);
    VTL_CHECK(loaded.json.value("version", 0) <= kVersion,
              "{}: written by a newer vtl (version {}); this one reads version {}",
              json_path.string(), loaded.json.value("version", 0), kVersion);
    loaded.architecture = loaded.json.at("architecture").get<std::string>();
    loaded.class_names = loaded.json.at("class_names").get<std::vector<std::string>>();
    num_classes = loaded.json.at("head").at("num_classes").get<int64_t>();
    dropout = loaded.json.at("head").value("dropout", 0.0);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed model description: {}", json_path.string(), e.what());
  }
  VTL_CHECK(static_cast<int64_t>(loaded.class_names.size()) == num_classes,
            "{}: {} class names but the head has {} outputs", json_path.string(),
            loaded.class_names.size(), num_classes);
  try {
    loaded.preprocessing =
        preprocessing_from_json(loaded.json.value("preprocessing", nlohmann::json::object()));
  } catch (const Error& e) {
    fail("{}: {}", json_path.string(), e.what());
  }

  auto base = create_model(loaded.architecture, ModelOptions().include_top(false));
  loaded.model = TransferModel(base, num_classes, dropout);
  const auto weights_path = dir / "model.safetensors";
  VTL_CHECK(fs::exists(weights_path, ec), "{}: missing (the model folder is incomplete)",
            weights_path.string());
  loaded.model->import_state_dict(weights::load_safetensors(weights_path), weights_path.string());
  loaded.model->eval();
  return loaded;
}

}  // namespace vtl::models

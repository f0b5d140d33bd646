#pragma once
// A trained model on disk (docs/architecture.md, "Files written"): a folder with
//   model.safetensors  the TransferModel's state dict under its published names (base:
//                      torchvision's keys; head: see transfer_model.h), float32
//   model.json         {"format": "vtl-model", "version": 1, "architecture": "resnet50",
//                       "head": {"prefix", "num_features", "num_classes", "dropout",
//                       "pooling": "avg"}, "class_names": [...], "preprocessing": {...},
//                       "base_weights": "resnet50.tv_in1k" | file | "random",
//                       "training": {free-form summary written by the trainer}}
// `vtl predict`, `vtl evaluate`, `vtl extract` and `vtl train --model DIR` read it.
// Python: safetensors.torch.load_file + torchvision.models.<arch>(num_classes=K).

#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "vtl/core/preprocessing.h"
#include "vtl/models/transfer_model.h"

namespace vtl::models {

/// What a model folder describes besides the weights.
struct ModelFolderInfo {
  std::vector<std::string> class_names;  ///< index = class id; size = head outputs
  Preprocessing preprocessing;           ///< eval transform the model was trained with
  std::string base_weights = "random";   ///< where the base's initial weights came from
  nlohmann::json training = nlohmann::json::object();  ///< summary (epochs, metrics, ...)
};

/// Writes `model` and `info` into `dir` (created if needed). Each file is written to a
/// temporary name and renamed into place, weights first and model.json last, so a folder
/// that has a model.json always has the matching complete weights.
void save_model_folder(const std::filesystem::path& dir, TransferModel& model,
                       const ModelFolderInfo& info);

/// A model folder loaded and ready to run: eval mode, on the CPU.
struct LoadedModel {
  TransferModel model{nullptr};
  std::string architecture;
  std::vector<std::string> class_names;
  Preprocessing preprocessing;
  nlohmann::json json;  ///< the whole model.json
};

/// True when `dir` looks like a model folder (has model.json).
bool is_model_folder(const std::filesystem::path& dir);

/// Reads a folder written by save_model_folder. Throws vtl::Error naming the file for a
/// missing or malformed model.json, an unknown architecture or weights that do not match.
LoadedModel load_model_folder(const std::filesystem::path& dir);

}  // namespace vtl::models

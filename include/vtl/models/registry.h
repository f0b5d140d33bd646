#pragma once
// The model registry: name -> builder + static facts. Variants are data: each family
// registers one row per variant from its config table.

#include <functional>
#include <string>
#include <vector>

#include "vtl/models/model.h"

namespace vtl::models {

using ModelBuilder = std::function<Model(const ModelOptions&)>;

/// Registers a model; a duplicate name throws vtl::Error. Families call this from
/// register_<family>() functions that the registry runs once on first use.
void register_model(const ModelInfo& info, ModelBuilder builder);

/// Registered names matching a shell-style pattern ("resnet*", "*"), sorted.
std::vector<std::string> list_models(const std::string& pattern = "*");

/// Facts of a registered model; unknown names throw vtl::Error suggesting close names.
const ModelInfo& model_info(const std::string& name);

/// Builds a randomly initialised model (torchvision's init). Unknown names throw
/// vtl::Error suggesting close names.
Model create_model(const std::string& name, const ModelOptions& options = {});

}  // namespace vtl::models

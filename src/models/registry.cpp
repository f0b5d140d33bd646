#include "vtl/models/registry.h"

#include <fnmatch.h>
#include <algorithm>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/core/text.h"

namespace vtl::models {

// Each family's translation unit defines one of these; the registry calls them once.
void register_resnet();
void register_vgg();
void register_mobilenet_v1();
void register_mobilenet_v2();
void register_mobilenet_v3();
void register_efficientnet();

namespace {

struct Entry {
  ModelInfo info;
  ModelBuilder builder;
};

std::map<std::string, Entry>& entries() {
  static std::map<std::string, Entry> table;
  return table;
}

void ensure_registered() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_resnet();
    register_vgg();
    register_mobilenet_v1();
    register_mobilenet_v2();
    register_mobilenet_v3();
    register_efficientnet();
  });
}

const Entry& find_entry(const std::string& name) {
  ensure_registered();
  auto it = entries().find(name);
  if (it == entries().end()) {
    std::vector<std::string> names;
    for (const auto& [key, entry] : entries()) names.push_back(key);
    fail("unknown model '{}'{}; `vtl models` lists all {} models", name, did_you_mean(name, names),
         names.size());
  }
  return it->second;
}

}  // namespace

void register_model(const ModelInfo& info, ModelBuilder builder) {
  auto [it, inserted] = entries().emplace(info.name, Entry{info, std::move(builder)});
  VTL_CHECK(inserted, "model '{}' is registered twice", info.name);
}

std::vector<std::string> list_models(const std::string& pattern) {
  ensure_registered();
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries()) {
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) names.push_back(name);
  }
  return names;
}

const ModelInfo& model_info(const std::string& name) { return find_entry(name).info; }

Model create_model(const std::string& name, const ModelOptions& options) {
  return find_entry(name).builder(options);
}

}  // namespace vtl::models

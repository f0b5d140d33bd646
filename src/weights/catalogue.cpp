#include "vtl/weights/catalogue.h"

#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/core/text.h"

namespace vtl::weights {
namespace {

bool is_hex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

PretrainedWeights parse_entry(const nlohmann::json& json, const std::string& file) {
  PretrainedWeights w;
  try {
    w.name = json.at("name").get<std::string>();
    w.architecture = json.at("architecture").get<std::string>();
    w.tag = json.at("tag").get<std::string>();
    w.file_name = json.at("file_name").get<std::string>();
    w.url = json.at("url").get<std::string>();
    w.sha256_prefix = json.value("sha256_prefix", std::string());
    w.format = json.value("format", std::string("pth"));
    w.preprocessing =
        preprocessing_from_json(json.value("preprocessing", nlohmann::json::object()));
    w.top1 = json.value("top1", 0.0);
    w.top5 = json.value("top5", 0.0);
    w.num_classes = json.value("num_classes", 1000);
    w.categories = json.value("categories", std::string("imagenet-1k"));
    w.is_default = json.value("is_default", false);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid catalogue entry {}: {}", file, json.dump().substr(0, 80), e.what());
  }
  VTL_CHECK(w.name == w.architecture + "." + w.tag, "{}: entry '{}' must be named '{}.{}'", file,
            w.name, w.architecture, w.tag);
  VTL_CHECK(is_hex(w.sha256_prefix), "{}: entry '{}' has a malformed sha256_prefix", file, w.name);
  VTL_CHECK(
      !w.file_name.empty() && w.file_name.find('/') == std::string::npos && w.file_name[0] != '.',
      "{}: entry '{}' has an invalid file name '{}'", file, w.name, w.file_name);
  VTL_CHECK(w.format == "pth" || w.format == "safetensors", "{}: entry '{}' has unknown format {}",
            file, w.name, w.format);
  return w;
}

std::vector<PretrainedWeights> load_catalogue() {
  const auto path = data_dir() / "weights_catalogue.json";
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
  VTL_CHECK(json.is_object() && json.contains("weights") && json["weights"].is_array(),
            "{}: expected an object with a 'weights' array", path.string());
  std::vector<PretrainedWeights> entries;
  std::map<std::string, int> defaults;
  for (const auto& item : json["weights"]) {
    entries.push_back(parse_entry(item, path.string()));
    for (size_t i = 0; i + 1 < entries.size(); ++i) {
      VTL_CHECK(entries[i].name != entries.back().name, "{}: entry '{}' appears twice",
                path.string(), entries.back().name);
    }
    defaults[entries.back().architecture] += entries.back().is_default;
  }
  for (const auto& [arch, count] : defaults) {
    VTL_CHECK(count == 1, "{}: architecture '{}' has {} default entries (need exactly 1)",
              path.string(), arch, count);
  }
  return entries;
}

}  // namespace

const std::vector<PretrainedWeights>& catalogue() {
  static const std::vector<PretrainedWeights> entries = load_catalogue();
  return entries;
}

const PretrainedWeights& find_weights(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& w : catalogue()) {
    if (w.name == name || (w.architecture == name && w.is_default)) return w;
    names.push_back(w.name);
  }
  fail("unknown pretrained weights '{}'{}; `vtl weights list` shows all {} entries", name,
       did_you_mean(name, names), names.size());
}

std::vector<const PretrainedWeights*> weights_for(const std::string& architecture) {
  std::vector<const PretrainedWeights*> out;
  for (const auto& w : catalogue()) {
    if (w.architecture == architecture) out.push_back(&w);
  }
  return out;
}

const std::vector<std::string>& imagenet_classes() {
  static const std::vector<std::string> names = [] {
    const auto path = data_dir() / "imagenet_classes.txt";
    std::ifstream in(path);
    VTL_CHECK(in, "cannot read {}: the ImageNet class names are missing", path.string());
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    VTL_CHECK(out.size() == 1000, "{}: expected 1000 class names, found {}", path.string(),
              out.size());
    return out;
  }();
  return names;
}

}  // namespace vtl::weights

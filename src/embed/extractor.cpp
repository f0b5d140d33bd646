#include "vtl/embed/extractor.h"

#include <cmath>
#include <cstdio>

#include <fmt/ranges.h>

#include "vtl/core/error.h"
#include "vtl/core/sha256.h"
#include "vtl/data/batch_reader.h"
#include "vtl/data/preprocess.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/pretrained.h"
#include "vtl/models/registry.h"

namespace vtl::embed {

nlohmann::json to_json(const FeatureSpec& spec) {
  return {{"model", spec.model},
          {"weights", spec.weights},
          {"layer", spec.layer},
          {"normalize", spec.l2_normalize ? "l2" : "none"},
          {"preprocessing", vtl::to_json(spec.preprocessing)},
          {"dim", spec.dim},
          {"amp", models::to_string(spec.amp)}};
}

FeatureSpec feature_spec_from_json(const nlohmann::json& json, const std::string& source) {
  FeatureSpec spec;
  try {
    spec.model = json.at("model").get<std::string>();
    spec.weights = json.at("weights").get<std::string>();
    spec.layer = json.at("layer").get<std::string>();
    const auto normalize = json.value("normalize", std::string("none"));
    VTL_CHECK(normalize == "l2" || normalize == "none", "{}: normalize must be l2 or none", source);
    spec.l2_normalize = normalize == "l2";
    spec.preprocessing = preprocessing_from_json(json.at("preprocessing"));
    spec.dim = json.at("dim").get<int64_t>();
    spec.amp = models::parse_precision(json.value("amp", std::string("off")));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed feature description: {}", source, e.what());
  }
  VTL_CHECK(spec.dim > 0, "{}: feature width must be positive", source);
  return spec;
}

namespace {

constexpr const char* kFolderPrefix = "folder:";
constexpr const char* kFilePrefix = "file:";
constexpr const char* kHashMark = "@sha256:";

/// Whether two weights names name the same weights: a file or model folder by the hash
/// of its bytes (it may have moved), anything else by name.
bool same_weights(const std::string& a, const std::string& b) {
  const auto kind = [](const std::string& name) { return name.substr(0, name.find(':') + 1); };
  const auto hash_a = a.rfind(kHashMark), hash_b = b.rfind(kHashMark);
  const bool by_hash = (kind(a) == kFilePrefix || kind(a) == kFolderPrefix) && kind(a) == kind(b) &&
                       hash_a != std::string::npos && hash_b != std::string::npos;
  return by_hash ? a.substr(hash_a) == b.substr(hash_b) : a == b;
}

/// The path in a "file:" or "folder:" weights name, or "" for other names.
std::string weights_path(const std::string& name) {
  for (const char* prefix : {kFilePrefix, kFolderPrefix}) {
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t start = std::string(prefix).size(), end = name.rfind(kHashMark);
    return name.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  return "";
}

}  // namespace

std::string spec_mismatch(const FeatureSpec& a, const FeatureSpec& b) {
  if (a.model != b.model) return fmt::format("model {} vs {}", a.model, b.model);
  if (!same_weights(a.weights, b.weights)) {
    const std::string path = weights_path(a.weights);
    if (!path.empty() && path == weights_path(b.weights))
      return fmt::format("{} has changed since the earlier vectors were made (other bytes)", path);
    return fmt::format("weights {} vs {}", a.weights, b.weights);
  }
  if (a.layer != b.layer) return fmt::format("layer {} vs {}", a.layer, b.layer);
  if (a.l2_normalize != b.l2_normalize) return "L2 normalization differs";
  if (a.preprocessing.crop != b.preprocessing.crop)
    return fmt::format("input size {} vs {} (--img-size)", a.preprocessing.crop,
                       b.preprocessing.crop);
  if (vtl::to_json(a.preprocessing) != vtl::to_json(b.preprocessing))
    return fmt::format("preprocessing {} vs {}", vtl::to_json(a.preprocessing).dump(),
                       vtl::to_json(b.preprocessing).dump());
  if (a.dim != b.dim) return fmt::format("width {} vs {}", a.dim, b.dim);
  return "";
}

namespace {

/// "folder:<abs dir>@sha256:<16 hex of model.safetensors>": names a trained model folder
/// and the exact weights in it.
std::string folder_weights_name(const std::filesystem::path& dir) {
  const auto weights_file = dir / "model.safetensors";
  return fmt::format("{}{}{}{}", kFolderPrefix,
                     std::filesystem::absolute(dir).lexically_normal().string(), kHashMark,
                     std::filesystem::exists(weights_file) ? sha256_file(weights_file).substr(0, 16)
                                                           : std::string("none"));
}

}  // namespace

Backbone load_backbone(const BackboneOptions& options) {
  VTL_CHECK(!options.model.empty(), "no model given (--model NAME or a trained model folder)");
  Backbone backbone;
  if (models::is_model_folder(options.model)) {
    VTL_CHECK(options.weights.empty() || options.weights == "random",
              "--weights does not apply to a trained model folder ({} has its own weights)",
              options.model);
    auto loaded = models::load_model_folder(options.model);
    backbone.model = loaded.model->base;
    backbone.architecture = loaded.architecture;
    backbone.preprocessing = loaded.preprocessing;
    backbone.weights = folder_weights_name(options.model);
  } else {
    VTL_CHECK(!std::filesystem::is_directory(options.model),
              "{} is a folder but not a trained model folder (no model.json)", options.model);
    const auto& info = models::model_info(options.model);
    backbone.architecture = info.name;
    if (options.weights.empty() || options.weights == "random") {
      torch::manual_seed(options.seed);
      backbone.model = models::create_model(info.name);
      backbone.weights = fmt::format("random(seed={})", options.seed);
      backbone.preprocessing.crop = static_cast<int>(info.default_input_size);
      backbone.preprocessing.resize =
          static_cast<int>(std::lround(info.default_input_size * 256.0 / 224.0));
    } else {
      // A catalogue name, or a .pth / .safetensors file (named with its content hash).
      auto pretrained = models::load_pretrained(info.name, options.weights);
      backbone.model = pretrained.model;
      backbone.preprocessing = pretrained.preprocessing;
      if (std::filesystem::is_regular_file(options.weights)) {
        backbone.weights =
            fmt::format("{}{}{}{}", kFilePrefix,
                        std::filesystem::absolute(options.weights).lexically_normal().string(),
                        kHashMark, sha256_file(options.weights).substr(0, 16));
      } else {
        backbone.weights = pretrained.weights;
      }
    }
  }
  if (options.image_size > 0) {
    backbone.preprocessing.crop = options.image_size;
    backbone.preprocessing.resize =
        static_cast<int>(std::lround(options.image_size * 256.0 / 224.0));
  }
  if (options.preprocessing) backbone.preprocessing = *options.preprocessing;
  backbone.model->eval();
  return backbone;
}

FeatureExtractor::FeatureExtractor(Backbone backbone, const std::string& layer, bool l2_normalize)
    : model_(std::move(backbone.model)) {
  spec_.model = backbone.architecture;
  spec_.weights = backbone.weights;
  spec_.layer = layer;
  spec_.l2_normalize = l2_normalize;
  spec_.preprocessing = backbone.preprocessing;
  model_->eval();
  models::fold_batch_norms(*model_);
  const auto taps = model_->tap_names();
  VTL_CHECK(std::find(taps.begin(), taps.end(), layer) != taps.end(),
            "{} has no layer '{}'; valid layers: {}", spec_.model, layer,
            fmt::format("{}", fmt::join(taps, ", ")));
  const int crop = spec_.preprocessing.crop;
  spec_.dim = embed(torch::zeros({1, 3, crop, crop})).size(1);
}

data::DecodeOptions FeatureExtractor::decode_options() const {
  data::DecodeOptions options;
  options.min_short_side = spec_.preprocessing.resize;
  return options;
}

torch::Tensor FeatureExtractor::preprocess(const cv::Mat& rgb) const {
  return data::eval_transform(rgb, spec_.preprocessing);
}

torch::Tensor FeatureExtractor::load(const std::filesystem::path& path) const {
  return data::load_eval_input(path, spec_.preprocessing);
}

void FeatureExtractor::to(const torch::Device& device) {
  VTL_CHECK(!device.is_cuda() || torch::cuda::is_available(),
            "--device cuda: no CUDA device is available to this build of LibTorch");
  models::check_precision_supported(spec_.amp, device);
  model_->to(device);
  device_ = device;
}

void FeatureExtractor::set_amp(models::Precision amp) {
  models::check_precision_supported(amp, device_);
  spec_.amp = amp;
}

torch::Tensor FeatureExtractor::embed(const torch::Tensor& batch) {
  torch::NoGradGuard no_grad;
  torch::Tensor x;
  {
    models::AutocastScope autocast(spec_.amp, device_);
    x = model_->forward_taps(batch.to(device_, /*non_blocking=*/true), {spec_.layer})
            .at(spec_.layer);
  }
  if (x.dim() == 4) x = x.mean({2, 3});
  x = x.reshape({x.size(0), -1}).to(torch::kFloat32);
  if (spec_.l2_normalize) x = x / x.norm(2, 1, true).clamp_min(1e-12);
  return x.to(torch::kCPU).contiguous();
}

torch::Tensor FeatureExtractor::embed_images(const std::vector<cv::Mat>& images) {
  if (images.empty()) return torch::zeros({0, spec_.dim}, torch::kFloat32);
  std::vector<torch::Tensor> tensors;
  tensors.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const cv::Mat& image = images[i];
    VTL_CHECK(!image.empty(),
              "embed_images: image {} is empty (cv::imread gives an empty Mat for a file it "
              "cannot read)",
              i);
    VTL_CHECK(image.type() == CV_8UC3,
              "embed_images: image {} has {} channel(s) of {}-byte values; expected 8-bit RGB "
              "(3 channels, CV_8UC3), as data::load_image_rgb gives",
              i, image.channels(), image.elemSize1());
    tensors.push_back(preprocess(image));
  }
  return embed(data::stack_batch(tensors));
}

torch::Tensor FeatureExtractor::embed_file(const std::filesystem::path& path) {
  return embed(load(path).unsqueeze(0))[0];
}

torch::Tensor FeatureExtractor::embed_files(const std::vector<std::filesystem::path>& paths,
                                            int64_t batch_size) {
  VTL_CHECK(batch_size > 0, "batch size must be positive (got {})", batch_size);
  std::vector<torch::Tensor> rows;
  data::BatchReader reader(paths, size_t(batch_size),
                           [this](const std::filesystem::path& path) { return load(path); });
  while (auto batch = reader.next()) {
    for (const auto& error : batch->errors) VTL_CHECK(error.empty(), "{}", error);
    rows.push_back(embed(batch->stacked()));
  }
  if (rows.empty()) return torch::zeros({0, spec_.dim}, torch::kFloat32);
  return torch::cat(rows);
}

FeatureExtractor extractor_for_spec(const FeatureSpec& spec,
                                    const std::filesystem::path& moved_weights) {
  const bool by_path = !weights_path(spec.weights).empty();
  VTL_CHECK(moved_weights.empty() || by_path,
            "--weights names where a weights file or model folder moved to; these features were "
            "made with {}",
            spec.weights);
  const std::string moved_hint =
      " (if it moved, give its new place with --weights PATH; the same bytes are needed)";
  BackboneOptions options;
  options.model = spec.model;
  unsigned long long seed = 0;
  if (std::sscanf(spec.weights.c_str(), "random(seed=%llu)", &seed) == 1) {
    options.weights = "random";
    options.seed = seed;
  } else if (spec.weights.rfind(kFolderPrefix, 0) == 0) {
    options.model = moved_weights.empty() ? weights_path(spec.weights) : moved_weights.string();
    VTL_CHECK(models::is_model_folder(options.model),
              "the trained model folder {} that made these features is gone{}", options.model,
              moved_weights.empty() ? moved_hint : "");
  } else if (spec.weights.rfind(kFilePrefix, 0) == 0) {
    options.weights = moved_weights.empty() ? weights_path(spec.weights) : moved_weights.string();
    VTL_CHECK(std::filesystem::is_regular_file(options.weights),
              "the weights file {} that made these features is gone{}", options.weights,
              moved_weights.empty() ? moved_hint : "");
  } else {
    options.weights = spec.weights;
  }
  options.preprocessing = spec.preprocessing;
  FeatureExtractor extractor(load_backbone(options), spec.layer, spec.l2_normalize);
  // The precision the vectors were made in, where this machine has it (fp16 is CUDA-only;
  // a query on the CPU then runs in f32: autocast does not change what a vector means).
  if (spec.amp != models::Precision::fp16) extractor.set_amp(spec.amp);
  const std::string mismatch = spec_mismatch(extractor.spec(), spec);
  VTL_CHECK(mismatch.empty(),
            "cannot rebuild the feature extractor {} used ({}); make the vectors again with "
            "these weights (and what was fitted or indexed on them), or restore the earlier ones",
            spec.model, mismatch);
  return extractor;
}

}  // namespace vtl::embed

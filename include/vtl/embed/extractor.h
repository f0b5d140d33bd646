#pragma once
// Image -> feature vector with one backbone and one tap. A FeatureSpec records everything
// that determines the vectors (model, weights, layer, normalization, preprocessing); it is
// stored beside every feature file and index, and two vector sets are comparable only
// when their specs agree.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "vtl/core/preprocessing.h"
#include "vtl/data/image.h"
#include "vtl/models/model.h"
#include "vtl/models/precision.h"

namespace vtl::embed {

/// What produced a set of feature vectors.
struct FeatureSpec {
  std::string model;    ///< registry name of the architecture, e.g. "resnet50"
  std::string weights;  ///< "random(seed=0)", a catalogue name, "file:<path>@sha256:<hex16>"
                        ///< or "folder:<dir>@sha256:<hex16>" for a trained model folder
  std::string layer = "avg_pool";  ///< tap; 4-D taps are globally average-pooled
  bool l2_normalize = false;       ///< rows scaled to unit L2 norm
  Preprocessing preprocessing;
  int64_t dim = 0;  ///< vector width (filled by FeatureExtractor)
  /// Autocast of the backbone's forward pass (f32: none); the vectors are float32 either
  /// way. Written as "amp": "off" | "bf16" | "fp16" (missing in older files: off). Not part
  /// of spec_mismatch: vectors of the same backbone in another precision are comparable.
  models::Precision amp = models::Precision::f32;
};

nlohmann::json to_json(const FeatureSpec& spec);
/// Throws vtl::Error naming `source` when fields are missing or malformed.
FeatureSpec feature_spec_from_json(const nlohmann::json& json, const std::string& source);

/// "" when vectors of `a` and `b` are comparable; otherwise a sentence naming the first
/// difference ("model resnet18 vs resnet50").
std::string spec_mismatch(const FeatureSpec& a, const FeatureSpec& b);

/// Which backbone to run: `model` is a registry name or a trained model folder;
/// `weights` is empty/"random" (seeded random init), a catalogue name (its file must be
/// in the store: `vtl weights fetch`), or a .pth / .safetensors file.
struct BackboneOptions {
  std::string model;
  std::string weights;
  uint64_t seed = 0;   ///< random init seed
  int image_size = 0;  ///< > 0: crop side (resize = side * 256 / 224); 0: the preset's
  /// When set, replaces the preset (and image_size) entirely.
  std::optional<Preprocessing> preprocessing;
};

/// A model in eval mode plus the preprocessing its weights expect.
struct Backbone {
  models::Model model{nullptr};  ///< shared handle; float32 on the CPU
  std::string architecture;
  std::string weights;  ///< FeatureSpec::weights
  Preprocessing preprocessing;
};

/// Builds the backbone (include_top kept, so pre_logits/logits taps exist). Throws
/// vtl::Error for unknown models, unreadable or mismatched weights.
Backbone load_backbone(const BackboneOptions& options);

/// Runs a backbone up to one tap and returns [N, dim] float32 rows (4-D taps such as a
/// stage output are globally average-pooled; "avg_pool" of resnet50 gives dim 2048).
/// Owns its model (a shared handle: model() returns it). Not thread-safe: callers
/// serving concurrent requests serialize calls to embed_*.
class FeatureExtractor {
 public:
  /// Validates the layer (vtl::Error listing valid taps), folds the backbone's BatchNorms
  /// into their convolutions (models::fold_batch_norms: the same features with one pass
  /// less per layer) and measures `dim` with one forward pass of a blank image. Takes the
  /// backbone's model over: load other weights into a Backbone before building one.
  FeatureExtractor(Backbone backbone, const std::string& layer = "avg_pool",
                   bool l2_normalize = false);

  /// Runs the model on `device` from now on (cpu, or cuda); inputs and outputs of embed*
  /// stay float32 on the CPU. A CUDA device this LibTorch cannot see throws vtl::Error.
  void to(const torch::Device& device);
  const torch::Device& device() const { return device_; }
  /// Runs the backbone under `amp` autocast from now on (recorded in spec()). Throws
  /// vtl::Error when the device cannot (fp16 needs CUDA).
  void set_amp(models::Precision amp);

  const FeatureSpec& spec() const { return spec_; }
  int64_t dim() const { return spec_.dim; }
  /// The eval-mode model with folded BatchNorms: for inference, not training or saving.
  models::Model& model() { return model_; }

  /// How files should be decoded for this preprocessing (JPEG reduced decoding).
  data::DecodeOptions decode_options() const;
  /// CV_8UC3 RGB image (any size) -> float32 [3, crop, crop], the weights' eval transform:
  /// shorter side resized to preprocessing.resize, centre crop, mean/std normalization.
  torch::Tensor preprocess(const cv::Mat& rgb) const;
  /// One image file -> float32 [3, crop, crop]: decoded with decode_options(), then
  /// preprocess(). Throws vtl::Error naming the file. Safe to call from several threads.
  torch::Tensor load(const std::filesystem::path& path) const;
  /// Preprocessed float32 batch [N, 3, H, W] -> [N, dim] float32 on the CPU (no grad,
  /// eval mode).
  torch::Tensor embed(const torch::Tensor& batch);
  /// Decoded CV_8UC3 RGB images (any sizes; cv::imread gives BGR: convert first) ->
  /// float32 [N, dim] ([0, dim] for none), each image preprocessed with preprocess().
  /// An empty Mat or another type is a vtl::Error naming its index.
  torch::Tensor embed_images(const std::vector<cv::Mat>& images);
  /// One image file -> float32 [dim]; decoding errors name the file.
  torch::Tensor embed_file(const std::filesystem::path& path);
  /// Image files -> float32 [N, dim], row i = paths[i], embedded `batch_size` at a time
  /// (decoded with decode_options(): alpha composited onto white, EXIF applied). An
  /// undecodable file throws vtl::Error naming it.
  torch::Tensor embed_files(const std::vector<std::filesystem::path>& paths,
                            int64_t batch_size = 32);

 private:
  models::Model model_;
  FeatureSpec spec_;
  torch::Device device_ = torch::kCPU;
};

/// Rebuilds the extractor a FeatureSpec describes (for `vtl index add`, `vtl search` and
/// `vtl serve`, which must embed queries exactly like the indexed images). Throws
/// vtl::Error when the weights it names cannot be found again or the rebuilt extractor
/// differs. `moved_weights`: where the weights file or trained model folder that made the
/// features is now, when it moved; its bytes must hash as the spec records (files and model
/// folders are named by their SHA-256, so spec_mismatch does not compare their paths).
FeatureExtractor extractor_for_spec(const FeatureSpec& spec,
                                    const std::filesystem::path& moved_weights = {});

}  // namespace vtl::embed

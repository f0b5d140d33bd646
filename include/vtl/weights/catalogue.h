#pragma once
// The pretrained-weights catalogue: data (data/weights_catalogue.json), not code. One entry
// per published file; names are "arch.tag", e.g. "resnet50.tv_in1k", "resnet50.tv2_in1k".

#include <string>
#include <vector>

#include "vtl/core/preprocessing.h"

namespace vtl::weights {

struct PretrainedWeights {
  std::string name;           ///< "resnet50.tv_in1k"
  std::string architecture;   ///< registry name, "resnet50"
  std::string tag;            ///< "tv_in1k"
  std::string file_name;      ///< "resnet50-0676ba61.pth" (as published)
  std::string url;            ///< where fetch downloads it from
  std::string sha256_prefix;  ///< leading hex digits of the file's SHA-256
  std::string format;         ///< "pth" or "safetensors"
  Preprocessing preprocessing;
  double top1 = 0;  ///< published ImageNet-1k acc@1, percent
  double top5 = 0;  ///< published ImageNet-1k acc@5, percent
  int num_classes = 1000;
  std::string categories;   ///< "imagenet-1k": class names from imagenet_classes()
  bool is_default = false;  ///< the entry an architecture name alone resolves to
};

/// Every catalogue entry, in file order. Loaded once from data_dir().
const std::vector<PretrainedWeights>& catalogue();

/// Entry by full name ("resnet50.tv2_in1k") or architecture name (its default entry).
/// Unknown names throw vtl::Error suggesting close names.
const PretrainedWeights& find_weights(const std::string& name);

/// Entries for one architecture (empty when none is published).
std::vector<const PretrainedWeights*> weights_for(const std::string& architecture);

/// The 1000 ImageNet-1k class names, index = class id.
const std::vector<std::string>& imagenet_classes();

}  // namespace vtl::weights

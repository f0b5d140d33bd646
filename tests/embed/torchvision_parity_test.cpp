// Extraction parity with torchvision: same weights, same preprocessed tensors, rows of
// features.npy equal torchvision's penultimate features within 1e-4.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/data/image.h"
#include "vtl/data/preprocess.h"
#include "vtl/embed/extract.h"
#include "vtl/embed/npy.h"

namespace vtl::embed {
namespace {

namespace fs = std::filesystem;

/// Copies weights.npy/weights.json (written by torchvision_features.py) into `model`.
void load_reference_weights(models::ModelImpl& model, const fs::path& dir) {
  auto flat = read_npy(dir / "weights.npy").reshape({-1});
  auto keys = nlohmann::json::parse(read_file(dir / "weights.json"));
  std::map<std::string, torch::Tensor> targets;
  for (auto& p : model.named_parameters()) targets[p.key()] = p.value();
  for (auto& b : model.named_buffers()) targets[b.key()] = b.value();
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  size_t copied = 0;
  for (const auto& entry : keys) {
    const auto key = entry[0].get<std::string>();
    const auto shape = entry[1].get<std::vector<int64_t>>();
    int64_t numel = 1;
    for (auto d : shape) numel *= d;
    auto source = flat.slice(0, offset, offset + numel).reshape(shape);
    offset += numel;
    auto it = targets.find(key);
    ASSERT_NE(it, targets.end()) << "model has no tensor " << key;
    it->second.copy_(source.to(it->second.scalar_type()));
    ++copied;
  }
  EXPECT_EQ(copied, targets.size());
}

TEST(TorchvisionParity, ExtractedRowsEqualTorchvisionPenultimateFeatures) {
  if (!testing::have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  if (testing::run_command("/usr/bin/python3 -c 'import torchvision'") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with torchvision is not available";
  testing::TempDir dir("vtl_parity");
  const auto items = testing::sample_items(2);

  BackboneOptions options;
  options.model = "resnet18";
  options.image_size = 64;
  // The preprocessed inputs vtl feeds the network, handed to torchvision as-is.
  std::vector<torch::Tensor> inputs;
  {
    FeatureExtractor preprocessor(load_backbone(options), "avg_pool", false);
    for (const auto& item : items)
      inputs.push_back(
          preprocessor.preprocess(data::load_image_rgb(item.path, preprocessor.decode_options())));
  }
  auto input = data::stack_batch(inputs);
  write_npy(dir / "input.npy", input.reshape({input.size(0), -1}));
  // numpy reads [N, 3*64*64]; the script reshapes through torch.from_numpy -> view.
  std::string output;
  ASSERT_EQ(testing::run_command("/usr/bin/python3 " VTL_SOURCE_DIR
                                 "/tests/embed/torchvision_features.py " +
                                     dir.path().string() + " resnet18",
                                 &output),
            0)
      << output;
  // The weights go into the backbone: an extractor folds its BatchNorms on construction.
  auto backbone = load_backbone(options);
  load_reference_weights(*backbone.model, dir.path());
  FeatureExtractor extractor(std::move(backbone), "avg_pool", false);

  ExtractOptions extract_options;
  extract_options.batch_size = 4;
  extract_features(extractor, items, dir.path(), extract_options);
  auto features = read_npy(dir / "features.npy");
  auto reference = read_npy(dir / "reference.npy");
  ASSERT_EQ(features.sizes(), reference.sizes());
  const float max_diff = (features - reference).abs().max().item<float>();
  EXPECT_LT(max_diff, 1e-4) << "max |vtl - torchvision| = " << max_diff;
  EXPECT_GT(reference.abs().max().item<float>(), 1e-2);  // not trivially zero

  // The same weights through the .pth file torch.save wrote (vtl's reader), end to end.
  BackboneOptions from_file = options;
  from_file.weights = (dir.path() / "weights.pth").string();
  FeatureExtractor file_extractor(load_backbone(from_file), "avg_pool", false);
  EXPECT_EQ(file_extractor.spec().weights.rfind("file:", 0), 0u) << file_extractor.spec().weights;
  const float file_diff = (file_extractor.embed(input) - reference).abs().max().item<float>();
  EXPECT_LT(file_diff, 1e-4) << "max |vtl(.pth) - torchvision| = " << file_diff;

  // NumPy loads the file vtl wrote and agrees with the reference.
  ASSERT_EQ(testing::run_command("/usr/bin/python3 " VTL_SOURCE_DIR
                                 "/tests/embed/torchvision_features.py " +
                                     dir.path().string() + " resnet18",
                                 &output),
            0)
      << output;
  EXPECT_NE(output.find("features.npy (6, 512) float32"), std::string::npos) << output;
}

}  // namespace
}  // namespace vtl::embed

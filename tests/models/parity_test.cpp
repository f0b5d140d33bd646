// Parity with torchvision: the C++ models load torchvision's own state-dict files
// unchanged (zip and legacy .pth) and reproduce its eval-mode logits and pooled features.
// Each test writes its model's references with tests/parity/make_references.py into its
// own scratch folder and removes them afterwards, so the disk holds at most the weights of
// the models under test at the same time (vgg19: 548 MiB), not all twenty (4.2 GiB).
// Skipped when /usr/bin/python3 has no torch or torchvision.

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "temp_dir.h"

#include "vtl/core/atomic_file.h"
#include "vtl/models/registry.h"
#include "vtl/weights/load.h"
#include "vtl/weights/weights_file.h"

namespace vtl::models {
namespace {

namespace fs = std::filesystem;

const char* const kTorchvisionModels[] = {
    "resnet18",        "resnet34",           "resnet50",
    "resnet101",       "resnet152",          "vgg16",
    "vgg19",           "vgg16_bn",           "vgg19_bn",
    "mobilenet_v2",    "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "efficientnet_b1",    "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4",    "efficientnet_b5",
    "efficientnet_b6", "efficientnet_b7",
};

torch::Tensor read_f32(const fs::path& path, const nlohmann::json& shape) {
  const std::string bytes = read_file(path);
  std::vector<int64_t> sizes = shape.get<std::vector<int64_t>>();
  auto tensor = torch::empty(sizes, torch::kFloat32);
  EXPECT_EQ(bytes.size(), tensor.numel() * sizeof(float)) << path;
  std::memcpy(tensor.data_ptr<float>(), bytes.data(),
              std::min<size_t>(bytes.size(), tensor.nbytes()));
  return tensor;
}

/// max |a - b| <= 1e-4 * max(1, max |reference|)
void expect_close(const torch::Tensor& actual, const torch::Tensor& reference,
                  const std::string& what) {
  ASSERT_EQ(actual.sizes(), reference.sizes()) << what;
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  const double diff = (actual - reference).abs().max().item<double>();
  EXPECT_LE(diff, 1e-4 * scale) << what << ": max |diff| " << diff << " at scale " << scale;
}

class TorchvisionParity : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionParity, LogitsAndPooledFeaturesMatch) {
  const std::string name = GetParam();
  const auto registered = list_models(name);
  if (registered.empty()) GTEST_SKIP() << name << " is not registered";
  const vtl::testing::TempDir scratch("vtl_parity_" + name);
  const fs::path& dir = scratch.path();
  std::string output;
  const int status = vtl::testing::run_command("/usr/bin/python3 " VTL_SOURCE_DIR
                                               "/tests/parity/make_references.py " +
                                                   dir.string() + " " + name,
                                               &output);
  if (status == 77) GTEST_SKIP() << output;
  ASSERT_EQ(status, 0) << "tests/parity/make_references.py failed:\n" << output;
  const auto index = nlohmann::json::parse(read_file(dir / "index.json"));
  ASSERT_TRUE(index.contains(name)) << "no reference for " << name << " in " << dir;
  const auto& entry = index[name];
  const auto input = read_f32(dir / (name + ".input.f32"), entry["input_shape"]);
  const auto logits = read_f32(dir / (name + ".logits.f32"), entry["logits_shape"]);
  const auto pooled = read_f32(dir / (name + ".pooled.f32"), entry["pooled_shape"]);

  for (const auto& [format, file] : entry["weights"].items()) {
    SCOPED_TRACE(name + " from " + format + " file " + file.get<std::string>());
    auto model = create_model(name);
    weights::load_state_dict(*model, weights::load_weights_file(dir / file.get<std::string>()));
    model->eval();
    torch::NoGradGuard no_grad;
    auto taps = model->forward_taps(input, {"avg_pool", "logits"});
    expect_close(taps.at("logits"), logits, "logits");
    expect_close(taps.at("avg_pool"), pooled, "avg_pool");
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionParity, ::testing::ValuesIn(kTorchvisionModels),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace vtl::models

#include <gtest/gtest.h>

#include "vtl/core/error.h"
#include "vtl/models/registry.h"
#include "vtl/models/stats.h"

namespace vtl::models {
namespace {

bool registered(const std::string& name) { return !list_models(name).empty(); }

struct Published {
  const char* name;
  int64_t parameters;  ///< torchvision's "num_params"
  double gflops;       ///< torchvision's "GFLOPS" column (multiply-accumulates / 1e9)
  double file_mib;     ///< torchvision's "_file_size" of the weights file (MiB)
};

// torchvision's model table (docs "Table of all available classification weights", weights
// meta num_params / _ops / _file_size), at each model's default input size.
constexpr Published kPublished[] = {
    {"resnet50", 25557032, 4.09, 97.781},
    {"vgg16", 138357544, 15.47, 527.796},
    {"efficientnet_b0", 5288548, 0.39, 20.451},
    {"mobilenet_v3_large", 5483032, 0.22, 21.114},
};

TEST(ModelStats, MatchTorchvisionPublishedFigures) {
  int checked = 0;
  for (const auto& published : kPublished) {
    if (!registered(published.name)) continue;
    const auto stats = model_stats(published.name);
    EXPECT_EQ(stats.name, published.name);
    EXPECT_EQ(stats.input_size, 224) << published.name;
    EXPECT_EQ(stats.parameters, published.parameters) << published.name;
    EXPECT_NEAR(stats.gmacs, published.gflops, 0.02 * published.gflops) << published.name;
    // The weights file holds the state dict plus a little pickle overhead.
    EXPECT_NEAR(stats.size_mib, published.file_mib, 0.01 * published.file_mib) << published.name;
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "none of the reference models is registered";
}

TEST(ModelStats, ResNet50ExactMacs) {
  // torchvision resnet50 at 224, counted once with forward hooks on every Conv2d
  // (out.numel() * in/groups * kh * kw) and Linear (out.numel() * in_features) under
  // /usr/bin/python3: 4,089,184,256 = convs 4,087,136,256 + fc 2048*1000.
  const auto stats = model_stats("resnet50");
  EXPECT_DOUBLE_EQ(stats.gmacs, (4087136256.0 + 2048000.0) / 1e9);
}

TEST(ModelStats, MacsScaleWithInputSize) {
  const auto at224 = model_stats("resnet18", 224);
  const auto at448 = model_stats("resnet18", 448);
  EXPECT_EQ(at448.input_size, 448);
  // Convolutions scale with the pixel count; only the fc layer (512x1000) does not.
  const double fc = 512.0 * 1000.0 / 1e9;
  EXPECT_NEAR(at448.gmacs - fc, 4.0 * (at224.gmacs - fc), 1e-9);
}

TEST(ModelStats, EachEfficientNetVariantCounted) {
  // torchvision's published GFLOPS for b1 (240 px) and b3 (300 px), the variants whose
  // default resolution torchvision's weights share with the paper.
  for (const auto& [name, gflops] : std::vector<std::pair<std::string, double>>{
           {"efficientnet_b1", 0.69}, {"efficientnet_b3", 1.83}}) {
    if (!registered(name)) GTEST_SKIP() << name << " is not registered";
    const auto stats = model_stats(name);
    EXPECT_NEAR(stats.gmacs, gflops, 0.02 * gflops) << name;
  }
}

TEST(MacCounter, CountsLinearOnceAndIgnoresOtherOps) {
  torch::NoGradGuard no_grad;
  torch::nn::Linear fc(64, 10);
  const auto x = torch::randn({4, 64});
  MacCounter counter;
  auto y = torch::relu(fc(x)) + 1;
  (void)torch::matmul(torch::randn({3, 5}), torch::randn({5, 7}));
  EXPECT_EQ(counter.macs(), 4 * 64 * 10 + 3 * 5 * 7);
  EXPECT_THROW(MacCounter second, Error);
}

TEST(MacCounter, CountsGroupedConvolution) {
  torch::NoGradGuard no_grad;
  torch::nn::Conv2d depthwise(torch::nn::Conv2dOptions(8, 8, 3).padding(1).groups(8));
  MacCounter counter;
  depthwise(torch::randn({2, 8, 10, 10}));
  EXPECT_EQ(counter.macs(), 2 * 8 * 10 * 10 * 9);
}

TEST(Latency, PositiveAndPerImage) {
  auto model = create_model("resnet18");
  model->train();
  const double ms = measure_latency_ms(model, 2, 64, 3, 1);
  EXPECT_GT(ms, 0.0);
  EXPECT_LT(ms, 10000.0);
  EXPECT_TRUE(model->is_training());
  EXPECT_THROW(measure_latency_ms(model, 0, 64), Error);
}

}  // namespace
}  // namespace vtl::models

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "models/model_checks.h"
#include "vtl/core/error.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

// Computed once with Debian's torchvision 0.14 (/usr/bin/python3):
//   m = torchvision.models.mobilenet_v2(); sd = m.state_dict()
//   sum(p.numel() for p in m.parameters()) (= torchvision's published num_params), len(sd),
//   and FNV-1a 64 over sorted(f"{k} {'x'.join(map(str, sd[k].shape))}\n" for k in sd) (the
//   same function as fingerprint() above).
constexpr int64_t kParameters = 3504872;
constexpr int64_t kClassifierParameters = 1280 * 1000 + 1000;
constexpr size_t kStateDictKeys = 314;
constexpr uint64_t kFingerprint = 0x252582b4227ba6e1ULL;

TEST(MobileNetV2, Registered) {
  EXPECT_EQ(list_models("mobilenet_v2*"), (std::vector<std::string>{"mobilenet_v2"}));
  const auto& info = model_info("mobilenet_v2");
  EXPECT_EQ(info.family, "mobilenet_v2");
  EXPECT_EQ(info.default_input_size, 224);
  EXPECT_EQ(info.num_features, 1280);
  EXPECT_FALSE(info.recommended_use.empty());
}

TEST(MobileNetV2, ParametersAndStateDictEqualTorchvision) {
  auto model = create_model("mobilenet_v2");
  EXPECT_EQ(count_parameters(*model), kParameters);
  const auto lines = state_dict_lines(*model);
  EXPECT_EQ(lines.size(), kStateDictKeys);
  EXPECT_EQ(fingerprint(lines), kFingerprint);
  // t = 1 block: depthwise Conv-BN-ReLU6 at conv.0, projection at conv.1/conv.2.
  EXPECT_TRUE(has_key(lines, "features.1.conv.0.0.weight 32x1x3x3"));
  EXPECT_TRUE(has_key(lines, "features.1.conv.1.weight 16x32x1x1"));
  // t = 6 block: expansion at conv.0, depthwise at conv.1, projection at conv.2/conv.3.
  EXPECT_TRUE(has_key(lines, "features.2.conv.1.0.weight 96x1x3x3"));
  EXPECT_TRUE(has_key(lines, "features.2.conv.3.num_batches_tracked "));
  EXPECT_TRUE(has_key(lines, "features.18.0.weight 1280x320x1x1"));
  EXPECT_TRUE(has_key(lines, "classifier.1.weight 1000x1280"));
  EXPECT_EQ(model->classifier_prefix(), "classifier.1");
}

TEST(MobileNetV2, Shapes) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto top = create_model("mobilenet_v2", ModelOptions().num_classes(7));
  top->eval();
  EXPECT_EQ(count_parameters(*top), kParameters - kClassifierParameters + 1280 * 7 + 7);
  EXPECT_EQ(top->forward_features(x).sizes(), (std::vector<int64_t>{2, 1280, 2, 2}));
  EXPECT_EQ(top->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(top->pre_logits_width(), 1280);
  for (auto pooling : {Pooling::avg, Pooling::max}) {
    auto base = create_model("mobilenet_v2", ModelOptions().include_top(false).pooling(pooling));
    base->eval();
    EXPECT_EQ(count_parameters(*base), kParameters - kClassifierParameters);
    const auto features = base->forward_features(x);
    const auto expected = pooling == Pooling::avg ? features.mean({2, 3}) : features.amax({2, 3});
    EXPECT_TRUE(torch::allclose(base->forward(x), expected));
  }
  auto map = create_model("mobilenet_v2", ModelOptions().include_top(false).pooling(Pooling::none));
  map->eval();
  EXPECT_EQ(map->forward(x).sizes(), (std::vector<int64_t>{2, 1280, 2, 2}));
  EXPECT_THROW(create_model("mobilenet_v2", ModelOptions().pooling(Pooling::none)), vtl::Error);
}

TEST(MobileNetV2, TapsSplitAtEachResolution) {
  torch::NoGradGuard no_grad;
  auto model = create_model("mobilenet_v2", ModelOptions().num_classes(7));
  model->eval();
  EXPECT_EQ(model->tap_names(), (std::vector<std::string>{
                                    "stem", "stage1", "stage2", "stage3", "stage4", "stage5",
                                    "head_conv", "features", "avg_pool", "pre_logits", "logits"}));
  const auto x = torch::randn({2, 3, 64, 64});
  const auto taps = model->forward_taps(
      x, {"stem", "stage1", "stage2", "stage3", "stage4", "stage5", "head_conv", "logits"});
  EXPECT_EQ(taps.at("stem").sizes(), (std::vector<int64_t>{2, 32, 32, 32}));
  EXPECT_EQ(taps.at("stage1").sizes(), (std::vector<int64_t>{2, 16, 32, 32}));
  EXPECT_EQ(taps.at("stage2").sizes(), (std::vector<int64_t>{2, 24, 16, 16}));
  EXPECT_EQ(taps.at("stage3").sizes(), (std::vector<int64_t>{2, 32, 8, 8}));
  EXPECT_EQ(taps.at("stage4").sizes(), (std::vector<int64_t>{2, 96, 4, 4}));
  EXPECT_EQ(taps.at("stage5").sizes(), (std::vector<int64_t>{2, 320, 2, 2}));
  EXPECT_TRUE(torch::equal(taps.at("head_conv"), model->forward_features(x)));
  EXPECT_TRUE(torch::allclose(taps.at("logits"), model->forward(x)));
  // ReLU6 ends the stem: outputs lie in [0, 6].
  EXPECT_GE(taps.at("stem").min().item<float>(), 0.0f);
  EXPECT_LE(taps.at("stem").max().item<float>(), 6.0f);
}

TEST(MobileNetV2, ResetClassifierAndDropout) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto model = create_model("mobilenet_v2");
  model->eval();
  model->reset_classifier(7);
  auto params = model->named_parameters();
  EXPECT_EQ(params["classifier.1.weight"].sizes(), (std::vector<int64_t>{7, 1280}));
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  model->reset_classifier(0);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 1280}));
  EXPECT_EQ(state_dict_lines(*model).size(), kStateDictKeys - 2);

  auto plain = create_model("mobilenet_v2", ModelOptions().dropout(0.0));
  plain->eval();  // BatchNorm on running stats; only the classifier's dropout in train mode
  plain->named_children()["classifier"]->train();
  EXPECT_TRUE(torch::equal(plain->forward(x), plain->forward(x)));
  auto dropped = create_model("mobilenet_v2");  // torchvision: p = 0.2
  dropped->eval();
  dropped->named_children()["classifier"]->train();
  EXPECT_FALSE(torch::equal(dropped->forward(x), dropped->forward(x)));
}

TEST(MobileNetV2, InitFollowsTorchvision) {
  auto params = create_model("mobilenet_v2")->named_parameters();
  // kaiming_normal_(fan_out): std = sqrt(2 / (32 * 3 * 3)) for the stem conv.
  EXPECT_NEAR(params["features.0.0.weight"].std().item<float>(), std::sqrt(2.0 / 288), 0.01);
  EXPECT_EQ(params["features.0.1.weight"].min().item<float>(), 1.0f);
  EXPECT_NEAR(params["classifier.1.weight"].std().item<float>(), 0.01, 0.0005);
  EXPECT_EQ(params["classifier.1.bias"].abs().max().item<float>(), 0.0f);
}

}  // namespace
}  // namespace vtl::models

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "models/model_checks.h"
#include "vtl/core/error.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

// timm is not installed here: the reference is timm's `mobilenetv1_100` as defined in
// huggingface/pytorch-image-models timm/models/efficientnet.py (`_gen_mobilenet_v1`) and
// _efficientnet_blocks.py (`DepthwiseSeparableConv`). A PyTorch module with exactly those
// submodules (conv_stem, bn1, blocks.S.B.{conv_dw, bn1, conv_pw, bn2}, classifier) was built
// once with /usr/bin/python3; its parameter count, 4,231,976, equals timm's published
// 4.23M. Key count and FNV-1a 64 over
//   sorted(f"{k} {'x'.join(map(str, sd[k].shape))}\n" for k in sd)
// (the same function as fingerprint() above) come from that module's state_dict.
constexpr int64_t kParameters = 4231976;
constexpr int64_t kClassifierParameters = 1024 * 1000 + 1000;
constexpr size_t kStateDictKeys = 164;
constexpr uint64_t kFingerprint = 0x79348b4454ea99bbULL;

TEST(MobileNetV1, Registered) {
  EXPECT_EQ(list_models("mobilenet_v1*"), (std::vector<std::string>{"mobilenet_v1"}));
  const auto& info = model_info("mobilenet_v1");
  EXPECT_EQ(info.family, "mobilenet_v1");
  EXPECT_EQ(info.default_input_size, 224);
  EXPECT_EQ(info.num_features, 1024);
  EXPECT_FALSE(info.recommended_use.empty());
}

TEST(MobileNetV1, ParametersAndStateDictEqualTimms) {
  auto model = create_model("mobilenet_v1");
  EXPECT_EQ(count_parameters(*model), kParameters);
  const auto lines = state_dict_lines(*model);
  EXPECT_EQ(lines.size(), kStateDictKeys);
  EXPECT_EQ(fingerprint(lines), kFingerprint);
  for (const char* key :
       {"conv_stem.weight 32x3x3x3", "bn1.num_batches_tracked ",
        "blocks.0.0.conv_dw.weight 32x1x3x3", "blocks.0.0.conv_pw.weight 64x32x1x1",
        "blocks.3.5.bn2.running_var 512", "blocks.4.1.conv_pw.weight 1024x1024x1x1",
        "classifier.weight 1000x1024", "classifier.bias 1000"}) {
    EXPECT_TRUE(has_key(lines, key)) << key;
  }
  EXPECT_EQ(model->classifier_prefix(), "classifier");
}

TEST(MobileNetV1, ShapesAndTaps) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto top = create_model("mobilenet_v1", ModelOptions().num_classes(7));
  top->eval();
  EXPECT_EQ(count_parameters(*top), kParameters - kClassifierParameters + 1024 * 7 + 7);
  EXPECT_EQ(top->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(top->pre_logits_width(), 1024);
  EXPECT_EQ(top->tap_names(),
            (std::vector<std::string>{"stem", "stage1", "stage2", "stage3", "stage4", "stage5",
                                      "features", "avg_pool", "pre_logits", "logits"}));
  const auto taps = top->forward_taps(
      x, {"stem", "stage1", "stage2", "stage3", "stage4", "stage5", "pre_logits"});
  EXPECT_EQ(taps.at("stem").sizes(), (std::vector<int64_t>{2, 32, 32, 32}));
  EXPECT_EQ(taps.at("stage1").sizes(), (std::vector<int64_t>{2, 64, 32, 32}));
  EXPECT_EQ(taps.at("stage2").sizes(), (std::vector<int64_t>{2, 128, 16, 16}));
  EXPECT_EQ(taps.at("stage3").sizes(), (std::vector<int64_t>{2, 256, 8, 8}));
  EXPECT_EQ(taps.at("stage4").sizes(), (std::vector<int64_t>{2, 512, 4, 4}));
  EXPECT_EQ(taps.at("stage5").sizes(), (std::vector<int64_t>{2, 1024, 2, 2}));
  EXPECT_TRUE(torch::allclose(taps.at("pre_logits"), taps.at("stage5").mean({2, 3})));
  // ReLU6 after the pointwise conv too (timm "dsa" blocks): outputs lie in [0, 6].
  EXPECT_GE(taps.at("stage5").min().item<float>(), 0.0f);
  EXPECT_LE(taps.at("stage5").max().item<float>(), 6.0f);

  for (auto pooling : {Pooling::avg, Pooling::max}) {
    auto base = create_model("mobilenet_v1", ModelOptions().include_top(false).pooling(pooling));
    base->eval();
    EXPECT_EQ(base->forward(x).sizes(), (std::vector<int64_t>{2, 1024}));
    EXPECT_EQ(count_parameters(*base), kParameters - kClassifierParameters);
  }
  auto map = create_model("mobilenet_v1", ModelOptions().include_top(false).pooling(Pooling::none));
  map->eval();
  EXPECT_EQ(map->forward(x).sizes(), (std::vector<int64_t>{2, 1024, 2, 2}));
  EXPECT_THROW(create_model("mobilenet_v1", ModelOptions().pooling(Pooling::none)), vtl::Error);
}

TEST(MobileNetV1, ResetClassifierAndDropout) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto model = create_model("mobilenet_v1");
  model->eval();
  model->reset_classifier(7);
  auto params = model->named_parameters();
  EXPECT_EQ(params["classifier.weight"].sizes(), (std::vector<int64_t>{7, 1024}));
  // timm's init: U(-1/sqrt(out_features), 1/sqrt(out_features)), bias 0.
  EXPECT_LE(params["classifier.weight"].abs().max().item<float>(), 1.0 / std::sqrt(7.0));
  EXPECT_GT(params["classifier.weight"].abs().max().item<float>(), 0.3);
  EXPECT_EQ(params["classifier.bias"].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  model->reset_classifier(0);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 1024}));
  EXPECT_EQ(state_dict_lines(*model).size(), kStateDictKeys - 2);

  // timm's drop_rate defaults to 0: deterministic in train mode unless the option asks.
  auto plain = create_model("mobilenet_v1");
  plain->train();
  EXPECT_TRUE(torch::equal(plain->forward(x), plain->forward(x)));
  auto dropped = create_model("mobilenet_v1", ModelOptions().dropout(0.5));
  dropped->train();
  EXPECT_FALSE(torch::equal(dropped->forward(x), dropped->forward(x)));
}

TEST(MobileNetV1, InitFollowsTimm) {
  auto params = create_model("mobilenet_v1")->named_parameters();
  // _init_weight_goog: N(0, sqrt(2 / fan_out)), fan_out = k*k*out / groups.
  EXPECT_NEAR(params["conv_stem.weight"].std().item<float>(), std::sqrt(2.0 / (9 * 32)), 0.01);
  EXPECT_NEAR(params["blocks.3.0.conv_dw.weight"].std().item<float>(), std::sqrt(2.0 / 9), 0.03);
  EXPECT_NEAR(params["blocks.4.1.conv_pw.weight"].std().item<float>(), std::sqrt(2.0 / 1024),
              0.001);
  EXPECT_EQ(params["bn1.weight"].min().item<float>(), 1.0f);
  EXPECT_LE(params["classifier.weight"].abs().max().item<float>(), 1.0 / std::sqrt(1000.0));
}

}  // namespace
}  // namespace vtl::models

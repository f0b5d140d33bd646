#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "models/model_checks.h"
#include "vtl/core/error.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

struct Reference {
  const char* name;
  int64_t parameters;             ///< at 1000 classes
  int64_t classifier_parameters;  ///< classifier.3 at 1000 classes
  size_t keys;                    ///< len(state_dict())
  uint64_t fingerprint;
  int64_t num_features;  ///< features[-1] width (6x the last block's)
  int64_t pre_logits;    ///< classifier.0 width
  std::vector<std::string> taps;
  std::vector<std::vector<int64_t>> tap_shapes;  ///< at a [2,3,64,64] input
  std::vector<std::string> sample_keys;          ///< "key shape" lines
};

// Computed once with Debian's torchvision 0.14 (/usr/bin/python3):
//   m = torchvision.models.<name>(); sd = m.state_dict()
//   sum(p.numel() for p in m.parameters()) (= torchvision's published num_params), len(sd),
//   and FNV-1a 64 over sorted(f"{k} {'x'.join(map(str, sd[k].shape))}\n" for k in sd) (the
//   same function as fingerprint() above).
const std::vector<Reference>& references() {
  static const std::vector<Reference> refs = {
      {"mobilenet_v3_large",
       5483032,
       1280 * 1000 + 1000,
       312,
       0x2c10d87df3cf883bULL,
       960,
       1280,
       {"stem", "stage1", "stage2", "stage3", "stage4", "stage5", "head_conv"},
       {{2, 16, 32, 32},
        {2, 16, 32, 32},
        {2, 24, 16, 16},
        {2, 40, 8, 8},
        {2, 112, 4, 4},
        {2, 160, 2, 2},
        {2, 960, 2, 2}},
       // No expansion in features.1 (16 -> 16): depthwise first. First SE: 72 -> 24 -> 72
       // (make_divisible(72 // 4, 8) = 24).
       {"features.1.block.0.0.weight 16x1x3x3", "features.4.block.2.fc1.weight 24x72x1x1",
        "features.4.block.2.fc2.bias 72", "features.4.block.3.1.running_mean 40",
        "features.16.0.weight 960x160x1x1", "classifier.0.weight 1280x960",
        "classifier.3.weight 1000x1280"}},
      {"mobilenet_v3_small",
       2542856,
       1024 * 1000 + 1000,
       244,
       0x1b4c749f90e02d6fULL,
       576,
       1024,
       {"stem", "stage1", "stage2", "stage3", "stage4", "head_conv"},
       {{2, 16, 32, 32},
        {2, 16, 16, 16},
        {2, 24, 8, 8},
        {2, 48, 4, 4},
        {2, 96, 2, 2},
        {2, 576, 2, 2}},
       {"features.1.block.1.fc1.weight 8x16x1x1", "features.1.block.2.0.weight 16x16x1x1",
        "features.5.block.0.0.weight 240x40x1x1", "features.12.1.num_batches_tracked ",
        "classifier.0.weight 1024x576", "classifier.3.weight 1000x1024"}},
  };
  return refs;
}

TEST(MobileNetV3, Registered) {
  EXPECT_EQ(list_models("mobilenet_v3*"),
            (std::vector<std::string>{"mobilenet_v3_large", "mobilenet_v3_small"}));
  for (const auto& ref : references()) {
    const auto& info = model_info(ref.name);
    EXPECT_EQ(info.family, "mobilenet_v3");
    EXPECT_EQ(info.default_input_size, 224);
    EXPECT_EQ(info.num_features, ref.num_features);
    EXPECT_FALSE(info.recommended_use.empty());
  }
}

TEST(MobileNetV3, ParametersAndStateDictEqualTorchvision) {
  for (const auto& ref : references()) {
    auto model = create_model(ref.name);
    EXPECT_EQ(count_parameters(*model), ref.parameters) << ref.name;
    const auto lines = state_dict_lines(*model);
    EXPECT_EQ(lines.size(), ref.keys) << ref.name;
    EXPECT_EQ(fingerprint(lines), ref.fingerprint) << ref.name;
    for (const auto& key : ref.sample_keys) EXPECT_TRUE(has_key(lines, key)) << key;
    EXPECT_EQ(model->classifier_prefix(), "classifier.3");
  }
}

TEST(MobileNetV3, BatchNormHasTorchvisionsEpsAndMomentum) {
  auto model = create_model("mobilenet_v3_small");
  int batch_norms = 0;
  for (const auto& module : model->modules()) {
    if (auto* bn = module->as<BatchNorm2d>()) {
      ++batch_norms;
      EXPECT_DOUBLE_EQ(bn->eps(), 0.001);
      EXPECT_DOUBLE_EQ(bn->momentum(), 0.01);
    }
  }
  EXPECT_EQ(batch_norms, 34);  // = the num_batches_tracked entries of torchvision's state_dict
}

TEST(MobileNetV3, ShapesAndTaps) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  for (const auto& ref : references()) {
    auto top = create_model(ref.name, ModelOptions().num_classes(7));
    top->eval();
    EXPECT_EQ(count_parameters(*top),
              ref.parameters - ref.classifier_parameters + ref.pre_logits * 7 + 7);
    EXPECT_EQ(top->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
    EXPECT_EQ(top->pre_logits_width(), ref.pre_logits);
    EXPECT_EQ(top->forward_head(top->forward_features(x), true).sizes(),
              (std::vector<int64_t>{2, ref.pre_logits}));
    auto names = ref.taps;
    for (const char* extra : {"features", "avg_pool", "pre_logits", "logits"}) {
      names.push_back(extra);
    }
    EXPECT_EQ(top->tap_names(), names);
    const auto taps = top->forward_taps(x, ref.taps);
    for (size_t i = 0; i < ref.taps.size(); ++i) {
      EXPECT_EQ(taps.at(ref.taps[i]).sizes(), ref.tap_shapes[i]) << ref.name << " " << ref.taps[i];
    }
    EXPECT_TRUE(torch::equal(taps.at("head_conv"), top->forward_features(x)));

    for (auto pooling : {Pooling::avg, Pooling::max}) {
      auto base = create_model(ref.name, ModelOptions().include_top(false).pooling(pooling));
      base->eval();
      EXPECT_EQ(base->forward(x).sizes(), (std::vector<int64_t>{2, ref.num_features}));
      EXPECT_EQ(base->pre_logits_width(), ref.num_features);
    }
    auto map = create_model(ref.name, ModelOptions().include_top(false).pooling(Pooling::none));
    map->eval();
    EXPECT_EQ(map->forward(x).sizes(), (std::vector<int64_t>{2, ref.num_features, 2, 2}));
  }
  EXPECT_THROW(create_model("mobilenet_v3_small", ModelOptions().pooling(Pooling::none)),
               vtl::Error);
}

TEST(MobileNetV3, ResetClassifierReplacesOnlyTheLastLinear) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto model = create_model("mobilenet_v3_small");
  model->eval();
  const auto hidden = model->named_parameters()["classifier.0.weight"].clone();
  model->reset_classifier(7);
  auto params = model->named_parameters();
  EXPECT_TRUE(torch::equal(params["classifier.0.weight"], hidden));
  EXPECT_EQ(params["classifier.3.weight"].sizes(), (std::vector<int64_t>{7, 1024}));
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  model->reset_classifier(0);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 576}));
  EXPECT_EQ(state_dict_lines(*model).size(), 244u - 4);
  model->reset_classifier(4);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(count_parameters(*model), 2542856 - 1025000 + 1024 * 4 + 4);
}

TEST(MobileNetV3, DropoutOptionOverridesTheDefault) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto plain = create_model("mobilenet_v3_small", ModelOptions().dropout(0.0));
  plain->eval();  // BatchNorm on running stats; only the classifier in train mode
  plain->named_children()["classifier"]->train();
  EXPECT_TRUE(torch::equal(plain->forward(x), plain->forward(x)));
  auto dropped = create_model("mobilenet_v3_small");  // torchvision: p = 0.2
  dropped->eval();
  dropped->named_children()["classifier"]->train();
  EXPECT_FALSE(torch::equal(dropped->forward(x), dropped->forward(x)));
}

}  // namespace
}  // namespace vtl::models

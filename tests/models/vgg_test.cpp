#include <gtest/gtest.h>

#include <algorithm>

#include "models/model_checks.h"
#include "vtl/core/error.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

struct Reference {
  const char* name;
  int64_t parameters;  ///< at 1000 classes
  size_t keys;         ///< len(state_dict())
  uint64_t fingerprint;
};

// Computed once with Debian's torchvision 0.14 (/usr/bin/python3):
//   sd = torchvision.models.<name>().state_dict()
//   sum(p.numel() for p in model.parameters()), len(sd), and FNV-1a 64 over
//   sorted(f"{k} {'x'.join(map(str, sd[k].shape))}\n" for k in sd) (the same function as
//   fingerprint() above). vgg16 / vgg19 equal torchvision's published num_params.
constexpr Reference kReferences[] = {
    {"vgg16", 138357544, 32, 0xd903676470699f1aULL},
    {"vgg19", 143667240, 38, 0xe1c939697103d426ULL},
    {"vgg16_bn", 138365992, 97, 0xecff20f482fe55eeULL},
    {"vgg19_bn", 143678248, 118, 0xb2ee306cf4b0db1dULL},
};

TEST(Vgg, AllVariantsRegistered) {
  EXPECT_EQ(list_models("vgg*"),
            (std::vector<std::string>{"vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}));
  for (const auto& reference : kReferences) {
    const auto& info = model_info(reference.name);
    EXPECT_EQ(info.family, "vgg");
    EXPECT_EQ(info.default_input_size, 224);
    EXPECT_EQ(info.num_features, 512);
    EXPECT_FALSE(info.recommended_use.empty());
  }
}

TEST(Vgg, ParametersAndStateDictEqualTorchvision) {
  for (const auto& reference : kReferences) {
    auto model = create_model(reference.name);
    EXPECT_EQ(count_parameters(*model), reference.parameters) << reference.name;
    const auto lines = state_dict_lines(*model);
    EXPECT_EQ(lines.size(), reference.keys) << reference.name;
    EXPECT_EQ(fingerprint(lines), reference.fingerprint) << reference.name;
    EXPECT_TRUE(has_key(lines, "features.0.weight 64x3x3x3")) << reference.name;
    EXPECT_TRUE(has_key(lines, "classifier.0.weight 4096x25088")) << reference.name;
    EXPECT_TRUE(has_key(lines, "classifier.6.weight 1000x4096")) << reference.name;
    EXPECT_EQ(model->classifier_prefix(), "classifier.6");
  }
  // BatchNorm sits right after each conv: features.1 is vgg16_bn's first BN.
  auto bn = create_model("vgg16_bn", ModelOptions().include_top(false));
  EXPECT_TRUE(has_key(state_dict_lines(*bn), "features.1.num_batches_tracked "));
  EXPECT_TRUE(has_key(state_dict_lines(*bn), "features.41.running_var 512"));
}

TEST(Vgg, ShapesWithAndWithoutTop) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  auto top = create_model("vgg16", ModelOptions().num_classes(7).dropout(0.0));
  top->train();  // the dropout option overrides torchvision's 0.5: deterministic in train mode
  EXPECT_TRUE(torch::equal(top->forward(x), top->forward(x)));
  top->eval();
  EXPECT_EQ(count_parameters(*top), 138357544 - 993 * 4097);  // 1000 -> 7 outputs
  EXPECT_EQ(top->forward_features(x).sizes(), (std::vector<int64_t>{2, 512, 2, 2}));
  EXPECT_EQ(top->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(top->forward_head(top->forward_features(x), true).sizes(),
            (std::vector<int64_t>{2, 4096}));
  EXPECT_EQ(top->pre_logits_width(), 4096);
  EXPECT_EQ(top->num_classes(), 7);

  for (auto pooling : {Pooling::avg, Pooling::max}) {
    auto base = create_model("vgg16_bn", ModelOptions().include_top(false).pooling(pooling));
    base->eval();
    EXPECT_EQ(base->forward(x).sizes(), (std::vector<int64_t>{2, 512}));
    EXPECT_EQ(base->pre_logits_width(), 512);
    EXPECT_EQ(base->num_classes(), 0);
    EXPECT_EQ(count_parameters(*base), 138365992 - 123642856);  // minus classifier.0/3/6
  }
  auto map = create_model("vgg16", ModelOptions().include_top(false).pooling(Pooling::none));
  map->eval();
  EXPECT_EQ(map->forward(x).sizes(), (std::vector<int64_t>{2, 512, 2, 2}));
}

TEST(Vgg, TapsAreBlocksEndingInMaxPool) {
  torch::NoGradGuard no_grad;
  auto model = create_model("vgg19", ModelOptions().num_classes(7));
  model->eval();
  EXPECT_EQ(model->tap_names(),
            (std::vector<std::string>{"block1", "block2", "block3", "block4", "block5", "features",
                                      "avg_pool", "pre_logits", "logits"}));
  const auto x = torch::randn({2, 3, 64, 64});
  const auto taps = model->forward_taps(x, {"block1", "block3", "block5", "pre_logits", "logits"});
  EXPECT_EQ(taps.at("block1").sizes(), (std::vector<int64_t>{2, 64, 32, 32}));
  EXPECT_EQ(taps.at("block3").sizes(), (std::vector<int64_t>{2, 256, 8, 8}));
  EXPECT_EQ(taps.at("block5").sizes(), (std::vector<int64_t>{2, 512, 2, 2}));
  EXPECT_EQ(taps.at("pre_logits").sizes(), (std::vector<int64_t>{2, 4096}));
  EXPECT_TRUE(torch::allclose(taps.at("logits"), model->forward(x)));
  EXPECT_TRUE(torch::equal(taps.at("block5"), model->forward_features(x)));
  // Stages end in a ReLU'd conv followed by a max-pool: never negative.
  EXPECT_GE(taps.at("block1").min().item<float>(), 0.0f);
  EXPECT_THROW(model->forward_taps(x, {"block6"}), vtl::Error);
  // torchvision's default dropout (0.5) is active in train mode only.
  model->train();
  EXPECT_FALSE(torch::equal(model->forward(x), model->forward(x)));
}

TEST(Vgg, ResetClassifierReplacesOnlyTheLastLinear) {
  torch::NoGradGuard no_grad;
  auto model = create_model("vgg16");
  model->eval();
  auto params = model->named_parameters();
  const auto hidden = params["classifier.3.weight"].clone();
  model->reset_classifier(7);
  params = model->named_parameters();
  EXPECT_TRUE(torch::equal(params["classifier.3.weight"], hidden));
  EXPECT_EQ(params["classifier.6.weight"].sizes(), (std::vector<int64_t>{7, 4096}));
  EXPECT_EQ(params["classifier.6.bias"].abs().max().item<float>(), 0.0f);
  // torchvision's init for the new layer: N(0, 0.01).
  EXPECT_NEAR(params["classifier.6.weight"].std().item<float>(), 0.01, 0.002);
  const auto x = torch::randn({2, 3, 64, 64});
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(model->num_classes(), 7);

  // 0 removes the whole classifier; a later reset builds a fresh MLP.
  model->reset_classifier(0);
  EXPECT_EQ(model->num_classes(), 0);
  EXPECT_EQ(model->named_parameters().size(), 26u);  // 13 convs x (weight, bias)
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 512}));
  EXPECT_EQ(model->tap_names().back(), "avg_pool");
  model->reset_classifier(3);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(count_parameters(*model), 138357544 - 997 * 4097);
}

TEST(Vgg, InitFollowsTorchvision) {
  auto model = create_model("vgg16_bn", ModelOptions().num_classes(10));
  auto params = model->named_parameters();
  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (64 * 3 * 3)) for features.0.
  EXPECT_NEAR(params["features.0.weight"].std().item<float>(), std::sqrt(2.0 / 576), 0.006);
  EXPECT_EQ(params["features.0.bias"].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(params["features.1.weight"].min().item<float>(), 1.0f);
  EXPECT_NEAR(params["classifier.0.weight"].std().item<float>(), 0.01, 0.0005);
  EXPECT_EQ(params["classifier.0.bias"].abs().max().item<float>(), 0.0f);
}

}  // namespace
}  // namespace vtl::models

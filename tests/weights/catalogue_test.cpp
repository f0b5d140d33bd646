#include <set>

#include <gtest/gtest.h>

#include "fixtures.h"
#include "vtl/core/error.h"
#include "vtl/models/pretrained.h"
#include "vtl/models/registry.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/safetensors.h"
#include "vtl/weights/store.h"

namespace vtl::weights {
namespace {

using testing::TempDir;

TEST(Catalogue, CoversTheArchitecturesWithOneDefaultEach) {
  std::set<std::string> archs;
  for (const auto& w : catalogue()) {
    archs.insert(w.architecture);
    EXPECT_EQ(w.name, w.architecture + "." + w.tag);
    EXPECT_GT(w.top1, 50.0) << w.name;
    EXPECT_GT(w.top5, w.top1) << w.name;
    EXPECT_EQ(w.num_classes, 1000);
    EXPECT_NE(w.url.find(w.format == "pth" ? w.file_name : "model.safetensors"), std::string::npos);
    if (w.format == "pth") {
      EXPECT_NE(w.file_name.find("-" + w.sha256_prefix + "."), std::string::npos) << w.name;
      EXPECT_GE(w.sha256_prefix.size(), 8u);
    }
  }
  for (const char* arch :
       {"vgg16", "vgg19", "vgg16_bn", "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101",
        "resnet152", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
        "efficientnet_b7"}) {
    EXPECT_TRUE(archs.count(arch)) << arch;
    EXPECT_EQ(find_weights(arch).architecture, arch);
    EXPECT_TRUE(find_weights(arch).is_default);
  }
}

TEST(Catalogue, PublishedFacts) {
  const auto& v1 = find_weights("resnet50.tv_in1k");
  EXPECT_EQ(v1.file_name, "resnet50-0676ba61.pth");
  EXPECT_EQ(v1.sha256_prefix, "0676ba61");
  EXPECT_DOUBLE_EQ(v1.top1, 76.13);
  EXPECT_FALSE(v1.is_default);
  const auto& v2 = find_weights("resnet50");
  EXPECT_EQ(v2.name, "resnet50.tv2_in1k");
  EXPECT_EQ(v2.preprocessing.resize, 232);
  const auto& b7 = find_weights("efficientnet_b7");
  EXPECT_EQ(b7.preprocessing.crop, 600);
  EXPECT_EQ(b7.preprocessing.interpolation, "bicubic");
  EXPECT_EQ(weights_for("resnet50").size(), 2u);
  EXPECT_TRUE(weights_for("no_such_arch").empty());
}

TEST(Catalogue, UnknownNamesSuggest) {
  try {
    find_weights("resnet50.tv_in1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resnet50.tv_in1k"), std::string::npos) << e.what();
  }
}

TEST(Catalogue, ImagenetClasses) {
  const auto& names = imagenet_classes();
  ASSERT_EQ(names.size(), 1000u);
  EXPECT_EQ(names[0], "tench");
  EXPECT_EQ(names[999], "toilet tissue");
}

StateDict state_of(torch::nn::Module& module) {
  StateDict sd;
  for (const auto& p : module.named_parameters()) sd[p.key()] = p.value().detach().clone();
  for (const auto& b : module.named_buffers()) sd[b.key()] = b.value().detach().clone();
  return sd;
}

TEST(Pretrained, LoadsAFileAndReplacesTheClassifier) {
  TempDir dir("vtl_weights_pretrained");
  auto source = models::create_model("resnet18");
  const StateDict sd = state_of(*source);
  save_safetensors(dir / "r18.safetensors", sd);

  auto same = models::load_pretrained("resnet18", (dir / "r18.safetensors").string());
  EXPECT_TRUE(same.report.skipped.empty());
  EXPECT_EQ(same.class_names.size(), 1000u);
  EXPECT_TRUE(torch::equal(same.model->named_parameters()["fc.weight"], sd.at("fc.weight")));

  auto five = models::load_pretrained("resnet18", (dir / "r18.safetensors").string(),
                                      models::ModelOptions().num_classes(5));
  EXPECT_EQ(five.report.skipped.size(), 2u);
  EXPECT_NE(five.report.summary().find("freshly initialised"), std::string::npos);
  EXPECT_TRUE(five.class_names.empty());
  EXPECT_EQ(five.model->named_parameters()["fc.weight"].size(0), 5);
  EXPECT_TRUE(torch::equal(five.model->named_parameters()["layer4.1.conv2.weight"],
                           sd.at("layer4.1.conv2.weight")));

  auto no_top = models::load_pretrained("resnet18", (dir / "r18.safetensors").string(),
                                        models::ModelOptions().include_top(false));
  // The file's classifier has no place in a base without its top: left out, not reported.
  EXPECT_TRUE(no_top.report.unexpected.empty());
  EXPECT_TRUE(no_top.report.missing.empty());
}

TEST(Pretrained, WrongArchitectureNamesFileAndKeys) {
  TempDir dir("vtl_weights_pretrained-wrong");
  auto source = models::create_model("resnet34");
  save_safetensors(dir / "r34.safetensors", state_of(*source));
  try {
    models::load_pretrained("resnet18", (dir / "r34.safetensors").string());
    FAIL();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("r34.safetensors"), std::string::npos) << message;
    EXPECT_NE(message.find("unexpected: layer1.2."), std::string::npos) << message;
  }
  // Nor does a base without its top take another architecture's file.
  EXPECT_THROW(models::load_pretrained("resnet18", (dir / "r34.safetensors").string(),
                                       models::ModelOptions().include_top(false)),
               Error);
  EXPECT_THROW(models::check_weights_for_architecture("resnet18", state_of(*source), "r34"), Error);
  EXPECT_NO_THROW(models::check_weights_for_architecture("resnet34", state_of(*source), "r34"));
}

TEST(Pretrained, MissingStoreFileSaysHowToGetIt) {
  TempDir home("vtl_weights_pretrained-home");
  ::setenv("VTL_HOME", home.path().c_str(), 1);
  try {
    models::load_pretrained("resnet18", "resnet18.tv_in1k");
    FAIL();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("vtl weights fetch resnet18.tv_in1k"), std::string::npos) << message;
    EXPECT_NE(message.find("https://download.pytorch.org/models/resnet18-f37072fd.pth"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("vtl weights import"), std::string::npos) << message;
  }
  EXPECT_THROW(models::load_pretrained("resnet18", "resnet50.tv_in1k"), Error);
  // "imagenet" (Keras' name) is the architecture's default entry.
  for (const auto& [arch, entry] : std::vector<std::pair<std::string, std::string>>{
           {"resnet18", "resnet18.tv_in1k"}, {"resnet50", "resnet50.tv2_in1k"}}) {
    try {
      models::load_pretrained(arch, "imagenet");
      FAIL() << arch;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("vtl weights fetch " + entry), std::string::npos)
          << e.what();
    }
  }
  ::unsetenv("VTL_HOME");
}

}  // namespace
}  // namespace vtl::weights

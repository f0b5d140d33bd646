#include <gtest/gtest.h>

#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

int64_t count_parameters(torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

TEST(ResNet, ParameterCountsEqualTorchvision) {
  auto model = create_model("resnet50");
  EXPECT_EQ(count_parameters(*model), 25557032);
}

}  // namespace
}  // namespace vtl::models

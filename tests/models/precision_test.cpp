#include "vtl/models/precision.h"

#include <gtest/gtest.h>

#include "vtl/core/error.h"

namespace vtl::models {
namespace {

TEST(Precision, ParsesTheAmpNamesAndRefusesOthers) {
  EXPECT_EQ(parse_precision("off"), Precision::f32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(parse_precision("fp16"), Precision::fp16);
  EXPECT_EQ(to_string(Precision::f32), "off");
  EXPECT_THROW(parse_precision("fp8"), Error);
  EXPECT_THROW(check_precision_supported(Precision::fp16, torch::kCPU), Error);
}

// bf16 on a CPU without bf16 instructions gets a note; with them, on CUDA, in f32 or on a
// CPU that could not be read, none.
TEST(Precision, AdviceOnlyWhereBf16WouldBeSlow) {
  const std::string without = "fpu sse2 avx2 avx512f avx512bw";
  EXPECT_NE(precision_advice(Precision::bf16, torch::kCPU, without).find("slower than f32"),
            std::string::npos);
  EXPECT_EQ(precision_advice(Precision::bf16, torch::kCPU, without + " avx512_bf16"), "");
  EXPECT_EQ(precision_advice(Precision::bf16, torch::kCPU, "amx_bf16 " + without), "");
  EXPECT_EQ(precision_advice(Precision::bf16, torch::kCPU, "fp asimd bf16 i8mm"), "");
  EXPECT_EQ(precision_advice(Precision::f32, torch::kCPU, without), "");
  EXPECT_EQ(precision_advice(Precision::bf16, torch::Device(torch::kCUDA), without), "");
  EXPECT_EQ(precision_advice(Precision::bf16, torch::kCPU, ""), "");
}

}  // namespace
}  // namespace vtl::models

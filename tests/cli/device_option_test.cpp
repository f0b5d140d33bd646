// Every command that runs a model takes --device cpu|cuda|cuda:N and checks the name
// before it reads any image or starts any work.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cli/run_cli.h"
#include "embed/sample_images.h"

namespace vtl::testing {
namespace {

class DeviceOption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_sample_images()) return;
    dir_ = new TempDir("vtl_device_option");
    make_class_tree(*dir_ / "data", 2);  // 3 classes x 2
    auto build = run_cli("index build " + data() +
                         " --model resnet18 --weights random --image-size 64 --out " + index());
    ASSERT_EQ(build.exit_code, 0) << build.output;
    auto features =
        run_cli("extract " + data() + " --model resnet18 --weights random --image-size 64 --out " +
                out("fit_features"));
    ASSERT_EQ(features.exit_code, 0) << features.output;
    auto fit = run_cli("classify fit " + out("fit_features") + " --out " + out("classifier"));
    ASSERT_EQ(fit.exit_code, 0) << fit.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  }
  static std::string data() { return (*dir_ / "data").string(); }
  static std::string index() { return (*dir_ / "index").string(); }
  static std::string out(const std::string& name) { return (*dir_ / name).string(); }

  /// `vtl ARGUMENTS --device DEVICE` must fail with exit status 1 and say `message`.
  static void expect_refused(const std::string& arguments, const std::string& device,
                             const std::string& message, const std::string& environment = "") {
    auto run = run_cli(arguments + " --device " + device, environment);
    EXPECT_EQ(run.exit_code, 1) << arguments << "\n" << run.output;
    EXPECT_NE(run.output.find(message), std::string::npos) << arguments << "\n" << run.output;
  }

  /// The commands, each with what it needs besides --device.
  static std::vector<std::string> commands() {
    const std::string query = (*dir_ / "data").string() + "/" + sample_classes()[0];
    return {
        "train " + data() +
            " --model resnet18 --weights random --img-size 64 --epochs 1 --quiet --out " +
            out("run"),
        "extract " + data() + " --model resnet18 --weights random --image-size 64 --out " +
            out("features"),
        "index build " + data() + " --model resnet18 --weights random --image-size 64 --out " +
            out("index2"),
        "index add " + index() + " " + data(),
        "search " + index() + " " + query,
        "serve " + index() + " --port 0",
        "classify predict " + out("classifier") + " " + query,
        "compare " + data() +
            " --models resnet18 --weights-from random --img-size 64 --cv 2 "
            "--out " +
            out("compare"),
    };
  }

  static TempDir* dir_;
};

TempDir* DeviceOption::dir_ = nullptr;

TEST_F(DeviceOption, UnknownNamesAreRefusedByEveryCommand) {
  for (const auto& command : commands()) {
    expect_refused(command, "gpu", "unknown device 'gpu': expected cpu, cuda or cuda:N");
    expect_refused(command, "cuda:x", "unknown device 'cuda:x'");
  }
  // Nothing was written on the way.
  EXPECT_FALSE(std::filesystem::exists(out("run")));
  EXPECT_FALSE(std::filesystem::exists(out("features")));
  EXPECT_FALSE(std::filesystem::exists(out("index2")));
  EXPECT_FALSE(std::filesystem::exists(out("compare")));
}

TEST_F(DeviceOption, CudaWithoutAGpuIsRefusedByEveryCommand) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a GPU";
  for (const auto& command : commands()) {
    expect_refused(command, "cuda", "--device cuda: no CUDA device is available");
    expect_refused(command, "cuda:1", "--device cuda:1: no CUDA device is available");
  }
}

TEST_F(DeviceOption, DistributedTrainingTakesCudaWithoutAnIndexAndPassesItOn) {
  const std::string rank =
      "RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 "
      "MASTER_PORT=29561 VTL_DIST_TIMEOUT=5";
  // Each rank takes the GPU of its LOCAL_RANK; a fixed cuda:N would put them all on one.
  expect_refused(commands()[0] + " --distributed", "cuda:0",
                 "--distributed takes --device cpu or cuda", rank);
  // --device cuda reaches the process group (NCCL on the GPU of LOCAL_RANK), not Gloo on
  // the CPU.
  if (torch::cuda::is_available()) return;
  expect_refused(commands()[0] + " --distributed", "cuda",
                 "--distributed --device cuda: no CUDA device is available", rank);
}

}  // namespace
}  // namespace vtl::testing

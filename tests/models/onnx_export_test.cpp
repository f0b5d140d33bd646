// ONNX export: every family's network, written by export_onnx and run by OpenCV's DNN
// module (an independent ONNX implementation), gives LibTorch's outputs.

#include <gtest/gtest.h>

#include "temp_dir.h"
#include "vtl/core/error.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/onnx_export.h"
#include "vtl/models/registry.h"
#include "vtl/models/transfer_model.h"

#ifdef VTL_HAVE_OPENCV_DNN
#include <opencv2/dnn.hpp>
#endif

namespace vtl::models {
namespace {
namespace fs = std::filesystem;

/// BatchNorm statistics away from their initial 0 and 1, so that folding them matters.
void randomize_batch_norm_statistics(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& buffer : module.named_buffers()) {
    if (buffer.key().find("running_mean") != std::string::npos)
      buffer.value().uniform_(-0.2, 0.2);
    else if (buffer.key().find("running_var") != std::string::npos)
      buffer.value().uniform_(0.5, 1.5);
  }
}

#ifdef VTL_HAVE_OPENCV_DNN
/// Runs the ONNX file on `images` [N,3,S,S] with OpenCV's DNN module; returns its outputs.
std::vector<torch::Tensor> run_with_opencv(const fs::path& path, const torch::Tensor& images,
                                           const std::vector<std::string>& outputs) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(path.string());
  const int sizes[] = {int(images.size(0)), 3, int(images.size(2)), int(images.size(3))};
  cv::Mat blob(4, sizes, CV_32F, images.contiguous().data_ptr<float>());
  net.setInput(blob.clone(), "images");
  std::vector<cv::Mat> results;
  std::vector<cv::String> names(outputs.begin(), outputs.end());
  net.forward(results, names);
  std::vector<torch::Tensor> tensors;
  for (const auto& result : results) {
    std::vector<int64_t> shape(result.size.p, result.size.p + result.dims);
    tensors.push_back(torch::from_blob(result.data, shape, torch::kFloat32).clone());
  }
  return tensors;
}
#endif

void expect_close(const torch::Tensor& actual, const torch::Tensor& expected,
                  const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-4 * scale) << what;
}

struct Case {
  std::string model;
  bool include_top;
  int64_t batch_size;  ///< 0: a free batch dimension
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << (c.include_top ? " classifier" : " transfer") << ", batch " << c.batch_size;
}

class OnnxExport : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxExport, OpenCvDnnRunsTheFileAndAgreesWithLibTorch) {
#ifndef VTL_HAVE_OPENCV_DNN
  GTEST_SKIP() << "OpenCV's DNN module is not installed";
#else
  const Case& c = GetParam();
  torch::manual_seed(7);
  const int64_t size = 64;
  torch::nn::ModuleHolder<torch::nn::Module> holder{nullptr};
  std::function<torch::Tensor(torch::Tensor)> forward;
  std::shared_ptr<torch::nn::Module> module;
  if (c.include_top) {
    Model model = create_model(c.model, ModelOptions().num_classes(10));
    module = model.ptr();
    forward = [model](torch::Tensor x) mutable { return model->forward(x); };
  } else {
    TransferModel model(create_model(c.model, ModelOptions().include_top(false)), 5, 0.2);
    module = model.ptr();
    forward = [model](torch::Tensor x) mutable { return model->forward(x); };
  }
  randomize_batch_norm_statistics(*module);
  module->eval();
  const auto images = torch::randn({2, 3, size, size});
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected = forward(images);  // BatchNorm as trained: not folded
  }
  fold_batch_norms(*module);

  testing::TempDir dir("vtl_onnx");
  const fs::path path = dir.path() / "model.onnx";
  OnnxExportOptions options;
  options.image_size = size;
  options.batch_size = c.batch_size;
  options.softmax_name = "probabilities";
  options.metadata = {{"vtl.architecture", c.model}};
  std::vector<bool> trainable;
  for (const auto& parameter : module->parameters()) trainable.push_back(parameter.requires_grad());
  const auto summary = export_onnx(forward, *module, path, options);
  EXPECT_EQ(summary.output_shape,
            (std::vector<int64_t>{c.batch_size > 0 ? c.batch_size : -1, expected.size(1)}));
  EXPECT_EQ(summary.bytes, int64_t(fs::file_size(path)));
  EXPECT_GT(summary.parameters, 0);
  std::vector<bool> trainable_after;
  for (const auto& parameter : module->parameters())
    trainable_after.push_back(parameter.requires_grad());
  EXPECT_EQ(trainable_after, trainable);  // restored after tracing

  const auto outputs = run_with_opencv(path, images, {"logits", "probabilities"});
  ASSERT_EQ(outputs.size(), 2u);
  expect_close(outputs[0], expected, c.model + " logits");
  expect_close(outputs[1], torch::softmax(expected, 1), c.model + " probabilities");
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Families, OnnxExport,
    ::testing::Values(Case{"resnet18", false, 0}, Case{"resnet18", true, 2},
                      Case{"vgg16", false, 0}, Case{"mobilenet_v1", false, 0},
                      Case{"mobilenet_v2", false, 0}, Case{"mobilenet_v3_small", false, 2},
                      Case{"mobilenet_v3_small", true, 2}, Case{"efficientnet_b0", false, 2}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return info.param.model + (info.param.include_top ? "_classifier" : "_transfer") +
             (info.param.batch_size > 0 ? "_batch" + std::to_string(info.param.batch_size)
                                        : "_any_batch");
    });

TEST(OnnxExportErrors, AnOperationOnnxExportDoesNotKnowIsNamed) {
  torch::nn::Linear linear(4, 2);
  testing::TempDir dir("vtl_onnx_errors");
  OnnxExportOptions options;
  options.image_size = 16;
  try {
    export_onnx(
        [&](torch::Tensor x) {
          return torch::tanh(x.mean({2, 3}).narrow(1, 0, 2));
        },
        *linear, dir.path() / "x.onnx", options);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("aten::"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "x.onnx"));
}

}  // namespace
}  // namespace vtl::models

#pragma once
// ONNX export: a network as an .onnx file for ONNX Runtime, OpenCV's DNN module,
// TensorRT or any other ONNX consumer.
//
//   auto loaded = vtl::models::load_model_folder("run/");
//   vtl::models::fold_batch_norms(*loaded.model);
//   vtl::models::export_onnx([&](torch::Tensor x) { return loaded.model->forward(x); },
//                            *loaded.model, "model.onnx", options);
//
// The forward pass is traced once on a [1, 3, S, S] input; what it ran becomes ONNX
// opset-13 nodes, its weights float32 initializers. The batch size is fixed (1 by default,
// as torch.onnx.export does) or free ("batch"); the spatial size is S. Operations that vtl's
// networks use in evaluation are supported (convolution, linear,
// ReLU/ReLU6/SiLU/hardswish/sigmoid/hardsigmoid, residual add, squeeze-excitation multiply, max and
// average pooling, mean, flatten; dropout is dropped); anything else throws vtl::Error naming it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace vtl::models {

struct OnnxExportOptions {
  /// Side S of the [batch, 3, S, S] input, in pixels.
  int64_t image_size = 224;
  /// Images per call; 0: any ("batch", a symbolic dimension). Runtimes such as ONNX
  /// Runtime and TensorRT take either; OpenCV's DNN module (4.6) needs a fixed batch for
  /// networks with squeeze-excitation (EfficientNet, MobileNetV3).
  int64_t batch_size = 1;
  /// Name of the graph input (an image batch, normalized as the model's preprocessing says).
  std::string input_name = "images";
  /// Name of the traced output ([batch, K] logits, or features).
  std::string output_name = "logits";
  /// Also output softmax(output, axis 1) under this name; empty: no second output.
  std::string softmax_name;
  /// metadata_props of the model: key -> value (e.g. preprocessing and class names as JSON).
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct OnnxExportSummary {
  int64_t nodes = 0;
  int64_t initializers = 0;
  int64_t parameters = 0;             ///< float32 values stored
  int64_t bytes = 0;                  ///< size of the file written
  std::vector<int64_t> output_shape;  ///< of the output; -1: the free batch dimension
};

/// Traces `forward` (which must run `module` in evaluation mode on the CPU in float32)
/// and writes the ONNX model to `path` (a temporary name, then renamed). `module`'s
/// parameters are excluded from autograd while tracing and restored after. Throws
/// vtl::Error for an operation ONNX export does not support.
OnnxExportSummary export_onnx(const std::function<torch::Tensor(torch::Tensor)>& forward,
                              torch::nn::Module& module, const std::filesystem::path& path,
                              const OnnxExportOptions& options = {});

}  // namespace vtl::models

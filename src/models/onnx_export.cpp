#include "vtl/models/onnx_export.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "models/onnx_proto.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::models {
namespace {

using torch::jit::Node;
using torch::jit::Value;

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;  // the IR of opset 13 (ONNX 1.8)

/// Turns the traced aten graph into ONNX nodes and initializers. Values are either run-time
/// tensors (named after their graph value) or constants (weights, sizes, flags) known at
/// export time; weights become initializers when a node reads them as tensors.
class GraphConverter {
 public:
  explicit GraphConverter(const torch::jit::Graph& graph) : graph_(graph) {}

  void convert(const std::string& input_name) {
    VTL_CHECK(graph_.inputs().size() == 1, "ONNX export: the traced graph has {} inputs",
              graph_.inputs().size());
    names_[graph_.inputs()[0]] = input_name;
    for (const Node* node : graph_.nodes()) convert_node(*node);
  }

  std::string tensor_name(const Value* value) {
    if (auto it = names_.find(value); it != names_.end()) return it->second;
    auto constant = constants_.find(value);
    VTL_CHECK(constant != constants_.end(), "ONNX export: value %{} has no producer",
              value->debugName());
    const c10::IValue& ivalue = constant->second;
    torch::Tensor tensor;
    if (ivalue.isTensor())
      tensor = ivalue.toTensor();
    else if (ivalue.isDouble() || ivalue.isInt())
      tensor = torch::tensor(
          static_cast<float>(ivalue.isDouble() ? ivalue.toDouble() : double(ivalue.toInt())));
    else
      fail("ONNX export: constant %{} is not a tensor", value->debugName());
    const std::string name = add_initializer(tensor);
    names_[value] = name;
    return name;
  }

  std::vector<onnx::Message> nodes, initializers;
  int64_t parameters = 0;

  std::string add_initializer(torch::Tensor tensor) {
    tensor = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const std::string name = fmt::format("w{}", initializers.size());
    initializers.push_back(onnx::tensor(name, onnx::DataType::float32, tensor.sizes().vec(),
                                        tensor.data_ptr(), tensor.numel() * sizeof(float)));
    parameters += tensor.numel();
    return name;
  }

 private:
  const c10::IValue& constant(const Value* value, const Node& node) {
    auto it = constants_.find(value);
    VTL_CHECK(it != constants_.end(),
              "ONNX export: {} takes a run-time value where a constant is needed",
              node.kind().toQualString());
    return it->second;
  }
  std::vector<int64_t> ints(const Value* value, const Node& node) {
    return constant(value, node).toIntVector();
  }
  double number(const Value* value, const Node& node) {
    const auto& ivalue = constant(value, node);
    return ivalue.isDouble() ? ivalue.toDouble() : static_cast<double>(ivalue.toInt());
  }
  bool is_none(const Value* value) const {
    auto it = constants_.find(value);
    return it != constants_.end() && it->second.isNone();
  }
  /// The concrete sizes of a traced tensor value.
  std::vector<int64_t> sizes_of(const Value* value) {
    auto type = value->type()->cast<c10::TensorType>();
    VTL_CHECK(type && type->sizes().concrete_sizes(), "ONNX export: the shape of %{} is not known",
              value->debugName());
    return *type->sizes().concrete_sizes();
  }

  /// Emits one ONNX node; its (single) output carries `result`'s name.
  void emit(const std::string& op, const std::vector<std::string>& inputs, const Value* result,
            std::vector<onnx::Message> attributes = {}) {
    const std::string output = output_name(result);
    nodes.push_back(
        onnx::node(op, inputs, {output}, attributes, fmt::format("{}_{}", op, nodes.size())));
  }
  /// Emits a node whose output is an intermediate tensor; returns its name.
  std::string emit_intermediate(const std::string& op, const std::vector<std::string>& inputs,
                                std::vector<onnx::Message> attributes = {}) {
    const std::string output = fmt::format("n{}", nodes.size());
    nodes.push_back(
        onnx::node(op, inputs, {output}, attributes, fmt::format("{}_{}", op, nodes.size())));
    return output;
  }
  std::string output_name(const Value* value) {
    const std::string name = "v" + value->debugName();
    names_[value] = name;
    return name;
  }
  void alias(const Value* to, const Value* from) { names_[to] = tensor_name(from); }

  static std::vector<int64_t> pads_of(const std::vector<int64_t>& padding) {
    // [top, left] -> ONNX's [top, left, bottom, right]
    std::vector<int64_t> pads = padding;
    if (pads.size() == 1) pads.push_back(pads[0]);
    pads.insert(pads.end(), pads.begin(), pads.end());
    return pads;
  }
  static std::vector<int64_t> pair_of(std::vector<int64_t> values) {
    if (values.size() == 1) values.push_back(values[0]);
    return values;
  }

  void convert_node(const Node& node) {
    const std::string kind = node.kind().toQualString();
    const auto in = node.inputs();
    const Value* out = node.outputs().empty() ? nullptr : node.output(0);

    if (kind == "prim::Constant") {
      auto value = torch::jit::toIValue(node.output());
      VTL_CHECK(value.has_value(), "ONNX export: unreadable constant %{}",
                node.output()->debugName());
      constants_[out] = *value;
    } else if (kind == "prim::ListConstruct") {
      std::vector<int64_t> values;
      for (const Value* item : in) values.push_back(constant(item, node).toInt());
      constants_[out] = c10::IValue(values);
    } else if (kind == "aten::t" && constants_.count(in[0])) {
      constants_[out] = constant(in[0], node).toTensor().t();  // a weight: transposed now
    } else if (kind == "aten::_convolution" || kind == "aten::conv2d") {
      const bool full = kind == "aten::_convolution";
      if (full) VTL_CHECK(!constant(in[6], node).toBool(), "ONNX export: transposed convolution");
      const int64_t groups = constant(in[full ? 8 : 6], node).toInt();
      const torch::Tensor weight = constant(in[1], node).toTensor();
      std::vector<std::string> inputs = {tensor_name(in[0]), tensor_name(in[1])};
      if (!is_none(in[2])) inputs.push_back(tensor_name(in[2]));
      emit("Conv", inputs, out,
           {onnx::attribute_ints("kernel_shape", {weight.size(2), weight.size(3)}),
            onnx::attribute_ints("strides", pair_of(ints(in[3], node))),
            onnx::attribute_ints("pads", pads_of(ints(in[4], node))),
            onnx::attribute_ints("dilations", pair_of(ints(in[5], node))),
            onnx::attribute_int("group", groups)});
    } else if (kind == "aten::batch_norm") {
      // (input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)
      VTL_CHECK(!constant(in[5], node).toBool(),
                "ONNX export: batch norm in training mode (export a model in eval mode)");
      emit("BatchNormalization",
           {tensor_name(in[0]), tensor_name(in[1]), tensor_name(in[2]), tensor_name(in[3]),
            tensor_name(in[4])},
           out, {onnx::attribute_float("epsilon", static_cast<float>(number(in[7], node)))});
    } else if (kind == "aten::addmm") {
      VTL_CHECK(number(in[3], node) == 1.0 && number(in[4], node) == 1.0,
                "ONNX export: addmm with beta or alpha other than 1");
      // A linear layer's addmm(bias, x, weight.t()): Gemm(x, weight, bias, transB=1), the
      // form ONNX consumers map to their fully connected layer.
      const auto& transposed = constant(in[2], node).toTensor();
      emit("Gemm", {tensor_name(in[1]), add_initializer(transposed.t()), tensor_name(in[0])}, out,
           {onnx::attribute_int("transB", 1)});
    } else if (kind == "aten::linear") {
      std::vector<std::string> inputs = {tensor_name(in[0]), tensor_name(in[1])};
      if (!is_none(in[2])) inputs.push_back(tensor_name(in[2]));
      emit("Gemm", inputs, out, {onnx::attribute_int("transB", 1)});
    } else if (kind == "aten::relu" || kind == "aten::relu_") {
      emit("Relu", {tensor_name(in[0])}, out);
    } else if (kind == "aten::sigmoid" || kind == "aten::sigmoid_") {
      emit("Sigmoid", {tensor_name(in[0])}, out);
    } else if (kind == "aten::hardsigmoid" || kind == "aten::hardsigmoid_") {
      // PyTorch: relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1), ONNX's HardSigmoid.
      emit("HardSigmoid", {tensor_name(in[0])}, out,
           {onnx::attribute_float("alpha", 1.0f / 6.0f), onnx::attribute_float("beta", 0.5f)});
    } else if (kind == "aten::hardswish" || kind == "aten::hardswish_") {
      // x * hardsigmoid(x): opset 13 has no HardSwish.
      const std::string x = tensor_name(in[0]);
      const std::string gate = emit_intermediate(
          "HardSigmoid", {x},
          {onnx::attribute_float("alpha", 1.0f / 6.0f), onnx::attribute_float("beta", 0.5f)});
      emit("Mul", {x, gate}, out);
    } else if (kind == "aten::silu" || kind == "aten::silu_") {
      const std::string x = tensor_name(in[0]);
      emit("Mul", {x, emit_intermediate("Sigmoid", {x})}, out);
    } else if (kind == "aten::hardtanh" || kind == "aten::hardtanh_" || kind == "aten::relu6" ||
               kind == "aten::relu6_") {
      // clip(x, low, high) = low + (high - low) * HardSigmoid(x) with alpha 1 / (high - low)
      // and beta -low / (high - low): ReLU6 as HardSigmoid and a Mul by 6, which every ONNX
      // consumer runs (OpenCV's DNN module reads Clip only with opset-6 attributes).
      const bool relu6 = kind.rfind("aten::relu6", 0) == 0;
      const double low = relu6 ? 0.0 : number(in[1], node);
      const double high = relu6 ? 6.0 : number(in[2], node);
      VTL_CHECK(high > low, "ONNX export: hardtanh with max {} <= min {}", high, low);
      const std::string unit = emit_intermediate(
          "HardSigmoid", {tensor_name(in[0])},
          {onnx::attribute_float("alpha", static_cast<float>(1.0 / (high - low))),
           onnx::attribute_float("beta", static_cast<float>(-low / (high - low)))});
      const std::string range = add_initializer(torch::tensor(static_cast<float>(high - low)));
      if (low == 0.0) {
        emit("Mul", {unit, range}, out);
      } else {
        emit("Add",
             {emit_intermediate("Mul", {unit, range}),
              add_initializer(torch::tensor(static_cast<float>(low)))},
             out);
      }
    } else if (kind == "aten::add" || kind == "aten::add_") {
      VTL_CHECK(in.size() < 3 || number(in[2], node) == 1.0,
                "ONNX export: add with alpha other than 1");
      emit("Add", {tensor_name(in[0]), tensor_name(in[1])}, out);
    } else if (kind == "aten::mul" || kind == "aten::mul_") {
      emit("Mul", {tensor_name(in[0]), tensor_name(in[1])}, out);
    } else if (kind == "aten::dropout" || kind == "aten::dropout_" ||
               kind == "aten::feature_dropout" || kind == "aten::feature_dropout_") {
      VTL_CHECK(!constant(in[2], node).toBool(),
                "ONNX export: dropout in training mode (export a model in eval mode)");
      alias(out, in[0]);
    } else if (kind == "aten::contiguous" || kind == "aten::detach") {
      alias(out, in[0]);
    } else if (kind == "aten::max_pool2d") {
      const auto kernel = pair_of(ints(in[1], node));
      auto stride = ints(in[2], node);
      emit("MaxPool", {tensor_name(in[0])}, out,
           {onnx::attribute_ints("kernel_shape", kernel),
            onnx::attribute_ints("strides", stride.empty() ? kernel : pair_of(stride)),
            onnx::attribute_ints("pads", pads_of(ints(in[3], node))),
            onnx::attribute_ints("dilations", pair_of(ints(in[4], node))),
            onnx::attribute_int("ceil_mode", constant(in[5], node).toBool() ? 1 : 0)});
    } else if (kind == "aten::mean") {
      VTL_CHECK(in.size() >= 3, "ONNX export: mean over all elements");
      auto dims = ints(in[1], node);
      const int64_t rank = static_cast<int64_t>(sizes_of(in[0]).size());
      for (auto& dim : dims)
        if (dim < 0) dim += rank;
      const bool keepdim = constant(in[2], node).toBool();
      if (rank == 4 && dims == std::vector<int64_t>{2, 3}) {
        // The global average pooling of every CNN: what ONNX consumers optimise best.
        if (keepdim) {
          emit("GlobalAveragePool", {tensor_name(in[0])}, out);
        } else {
          emit("Flatten", {emit_intermediate("GlobalAveragePool", {tensor_name(in[0])})}, out,
               {onnx::attribute_int("axis", 1)});
        }
      } else {
        emit("ReduceMean", {tensor_name(in[0])}, out,
             {onnx::attribute_ints("axes", dims), onnx::attribute_int("keepdims", keepdim)});
      }
    } else if (kind == "aten::adaptive_avg_pool2d") {
      const auto output_size = pair_of(ints(in[1], node));
      const auto input_size = sizes_of(in[0]);
      const int64_t h = input_size.at(2), w = input_size.at(3);
      if (output_size == std::vector<int64_t>{1, 1}) {
        emit("GlobalAveragePool", {tensor_name(in[0])}, out);
      } else if (output_size == std::vector<int64_t>{h, w}) {
        alias(out, in[0]);
      } else {
        VTL_CHECK(h % output_size[0] == 0 && w % output_size[1] == 0,
                  "ONNX export: adaptive average pooling from {}x{} to {}x{} (export at an "
                  "image size whose feature map divides evenly)",
                  h, w, output_size[0], output_size[1]);
        const std::vector<int64_t> kernel = {h / output_size[0], w / output_size[1]};
        emit("AveragePool", {tensor_name(in[0])}, out,
             {onnx::attribute_ints("kernel_shape", kernel),
              onnx::attribute_ints("strides", kernel)});
      }
    } else if (kind == "aten::flatten") {
      const int64_t rank = static_cast<int64_t>(sizes_of(in[0]).size());
      int64_t start = constant(in[1], node).toInt(), end = constant(in[2], node).toInt();
      if (start < 0) start += rank;
      if (end < 0) end += rank;
      VTL_CHECK(end == rank - 1, "ONNX export: flatten that keeps trailing dimensions");
      emit("Flatten", {tensor_name(in[0])}, out, {onnx::attribute_int("axis", start)});
    } else if (kind == "aten::softmax") {
      emit("Softmax", {tensor_name(in[0])}, out,
           {onnx::attribute_int("axis", constant(in[1], node).toInt())});
    } else {
      fail("ONNX export: the operation {} is not supported", kind);
    }
  }

  const torch::jit::Graph& graph_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, c10::IValue> constants_;
};

}  // namespace

OnnxExportSummary export_onnx(const std::function<torch::Tensor(torch::Tensor)>& forward,
                              torch::nn::Module& module, const std::filesystem::path& path,
                              const OnnxExportOptions& options) {
  VTL_CHECK(options.image_size >= 16, "ONNX export: image size {} is below 16 pixels",
            options.image_size);
  // Parameters are traced as constants, which must not require gradients.
  std::vector<std::pair<torch::Tensor, bool>> grad_flags;
  for (auto& parameter : module.parameters()) {
    grad_flags.emplace_back(parameter, parameter.requires_grad());
    parameter.set_requires_grad(false);
  }
  struct RestoreGradFlags {
    std::vector<std::pair<torch::Tensor, bool>>& flags;
    ~RestoreGradFlags() {
      for (auto& [parameter, flag] : flags) parameter.set_requires_grad(flag);
    }
  } restore{grad_flags};

  torch::NoGradGuard no_grad;
  VTL_CHECK(options.batch_size >= 0, "ONNX export: batch size {} is negative", options.batch_size);
  const int64_t batch = options.batch_size > 0 ? options.batch_size : -1;
  const auto example =
      torch::zeros({std::max<int64_t>(batch, 1), 3, options.image_size, options.image_size});
  auto traced = torch::jit::tracer::trace(
      {example},
      [&](torch::jit::Stack inputs) -> torch::jit::Stack {
        return {forward(inputs.at(0).toTensor())};
      },
      [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false);
  const auto& graph = *traced.first->graph;
  const torch::Tensor example_output = traced.second.at(0).toTensor();
  VTL_CHECK(graph.outputs().size() == 1, "ONNX export: the forward pass returns {} values",
            graph.outputs().size());

  GraphConverter converter(graph);
  converter.convert(options.input_name);
  // The traced output under its public name (an Identity keeps the graph's values unique).
  std::vector<onnx::Message> outputs;
  converter.nodes.push_back(onnx::node("Identity", {converter.tensor_name(graph.outputs()[0])},
                                       {options.output_name}, {}, "output"));
  auto output_dims = example_output.sizes().vec();
  output_dims[0] = batch;
  outputs.push_back(onnx::float_tensor_info(options.output_name, output_dims, {"batch"}));
  if (!options.softmax_name.empty()) {
    converter.nodes.push_back(onnx::node("Softmax", {options.output_name}, {options.softmax_name},
                                         {onnx::attribute_int("axis", 1)}, "softmax"));
    outputs.push_back(onnx::float_tensor_info(options.softmax_name, output_dims, {"batch"}));
  }

  onnx::Message graph_message;
  for (const auto& node : converter.nodes) graph_message.message(1, node);
  graph_message.string(2, "vtl");
  for (const auto& initializer : converter.initializers) graph_message.message(5, initializer);
  graph_message.message(
      11, onnx::float_tensor_info(options.input_name,
                                  {batch, 3, options.image_size, options.image_size}, {"batch"}));
  for (const auto& output : outputs) graph_message.message(12, output);

  onnx::Message model;
  model.varint(1, kIrVersion).string(2, "vtl").string(3, "1");
  model.message(7, graph_message);
  onnx::Message opset;
  opset.string(1, "").varint(2, kOpset);
  model.message(8, opset);
  for (const auto& [key, value] : options.metadata) {
    onnx::Message entry;
    entry.string(1, key).string(2, value);
    model.message(14, entry);
  }
  write_file_atomically(path, model.data());

  OnnxExportSummary summary;
  summary.nodes = static_cast<int64_t>(converter.nodes.size());
  summary.initializers = static_cast<int64_t>(converter.initializers.size());
  summary.parameters = converter.parameters;
  summary.bytes = static_cast<int64_t>(model.data().size());
  summary.output_shape = output_dims;
  return summary;
}

}  // namespace vtl::models

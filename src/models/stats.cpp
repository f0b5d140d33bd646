#include "vtl/models/stats.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <ATen/record_function.h>
#include <torch/cuda.h>

#include "vtl/core/error.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// State of the MacCounter alive on this thread (callbacks are plain function pointers).
struct CounterState {
  bool active = false;
  int64_t macs = 0;
  /// Nesting depth inside a counted op: aten::conv2d calls aten::convolution which calls
  /// aten::_convolution (and linear calls addmm / matmul calls mm); only the outermost
  /// counted op adds its MACs.
  int depth = 0;
};
thread_local CounterState counter_state;

/// The ops whose MACs are counted: the public entry points and what they dispatch to.
enum class OpKind { none, convolution, addmm, matmul, linear };

OpKind classify(const char* name) {
  static const std::pair<const char*, OpKind> kOps[] = {
      {"aten::conv1d", OpKind::convolution},
      {"aten::conv2d", OpKind::convolution},
      {"aten::conv3d", OpKind::convolution},
      {"aten::convolution", OpKind::convolution},
      {"aten::_convolution", OpKind::convolution},
      {"aten::conv_transpose2d", OpKind::convolution},
      {"aten::linear", OpKind::linear},
      {"aten::addmm", OpKind::addmm},
      {"aten::mm", OpKind::matmul},
      {"aten::bmm", OpKind::matmul},
      {"aten::matmul", OpKind::matmul},
  };
  for (const auto& [op, kind] : kOps) {
    if (std::strcmp(name, op) == 0) return kind;
  }
  return OpKind::none;
}

/// Marks, for the end callback, that the start callback entered a counted op.
struct CountedOp : at::ObserverContext {};

bool is_tensor(const c10::IValue& value) { return value.isTensor() && value.toTensor().defined(); }

/// MACs of one counted op from its inputs and outputs (0 when they are not tensors).
int64_t op_macs(OpKind kind, const at::RecordFunction& fn) {
  const auto inputs = fn.inputs();
  const auto& outputs = fn.outputs();
  if (outputs.empty() || !is_tensor(outputs[0])) return 0;
  const auto& out = outputs[0].toTensor();
  switch (kind) {
    case OpKind::convolution: {
      // inputs: input, weight, ...; weight [Cout, Cin/groups, k...] (transposed:
      // [Cin, Cout/groups, k...]). Each output element takes Cin/groups * prod(k) MACs;
      // for a transposed conv, each input element is spread over Cout/groups * prod(k).
      if (inputs.size() < 2 || !is_tensor(inputs[0]) || !is_tensor(inputs[1])) return 0;
      const auto& weight = inputs[1].toTensor();
      const int64_t per_element = weight.numel() / weight.size(0);
      const bool transposed = std::strstr(fn.name(), "transpose") != nullptr ||
                              (inputs.size() > 6 && inputs[6].isBool() && inputs[6].toBool());
      return (transposed ? inputs[0].toTensor().numel() : out.numel()) * per_element;
    }
    case OpKind::linear: {
      // input [..., in], weight [out, in] -> output [..., out], in MACs per output element.
      if (inputs.size() < 2 || !is_tensor(inputs[1])) return 0;
      return out.numel() * inputs[1].toTensor().size(-1);
    }
    case OpKind::addmm: {
      // addmm(bias, mat1 [M,K], mat2 [K,N]) -> [M,N]
      if (inputs.size() < 3 || !is_tensor(inputs[1])) return 0;
      return out.numel() * inputs[1].toTensor().size(-1);
    }
    case OpKind::matmul: {
      // mm / bmm / matmul(a [...,K], b) -> output; K MACs per output element.
      if (inputs.empty() || !is_tensor(inputs[0])) return 0;
      return out.numel() * inputs[0].toTensor().size(-1);
    }
    case OpKind::none:
      break;
  }
  return 0;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (!counter_state.active || classify(fn.name()) == OpKind::none) return nullptr;
  ++counter_state.depth;
  return std::make_unique<CountedOp>();
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* context) {
  if (context == nullptr || !counter_state.active) return;
  --counter_state.depth;
  if (counter_state.depth == 0) counter_state.macs += op_macs(classify(fn.name()), fn);
}

int64_t resolve_input_size(const Model& model, int64_t input_size) {
  if (input_size == 0) input_size = model->info().default_input_size;
  VTL_CHECK(input_size >= 32, "{}: input size must be at least 32 pixels (got {})", model->name(),
            input_size);
  return input_size;
}

}  // namespace

MacCounter::MacCounter() {
  VTL_CHECK(!counter_state.active, "a MacCounter is already counting on this thread");
  counter_state = CounterState{true, 0, 0};
  handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end)
                                           .needsInputs(true)
                                           .needsOutputs(true)
                                           .scopes({at::RecordScope::FUNCTION}));
}

MacCounter::~MacCounter() {
  at::removeCallback(handle_);
  counter_state.active = false;
}

int64_t MacCounter::macs() const { return counter_state.macs; }

ModelStats model_stats(Model& model, int64_t input_size) {
  input_size = resolve_input_size(model, input_size);
  ModelStats stats;
  stats.name = model->name();
  stats.input_size = input_size;
  int64_t bytes = 0;
  for (const auto& p : model->parameters()) {
    stats.parameters += p.numel();
    bytes += p.numel() * 4;
  }
  for (const auto& b : model->buffers())
    bytes += b.numel() * static_cast<int64_t>(b.element_size());
  stats.size_mib = static_cast<double>(bytes) / (1024.0 * 1024.0);

  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const auto x = torch::zeros({1, 3, input_size, input_size});
  int64_t macs = 0;
  {
    MacCounter counter;
    model->forward(x);
    macs = counter.macs();
  }
  model->train(was_training);
  stats.gmacs = static_cast<double>(macs) / 1e9;
  return stats;
}

ModelStats model_stats(const std::string& name, int64_t input_size) {
  auto model = create_model(name);
  return model_stats(model, input_size);
}

double measure_latency_ms(Model& model, int64_t batch, int64_t input_size, int repeats,
                          int warmup) {
  VTL_CHECK(batch >= 1 && repeats >= 1 && warmup >= 0,
            "measure_latency_ms: batch and repeats must be positive (got {} and {})", batch,
            repeats);
  input_size = resolve_input_size(model, input_size);
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const auto parameters = model->parameters();
  const torch::Device device =
      parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
  // CUDA kernels run asynchronously: a pass ends when the device is done with it.
  auto wait = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  const auto x = torch::randn({batch, 3, input_size, input_size}, torch::device(device));
  for (int i = 0; i < warmup; ++i) model->forward(x);
  wait();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    model->forward(x);
    wait();
    const auto stop = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  model->train(was_training);
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  const double median = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  return median / static_cast<double>(batch);
}

}  // namespace vtl::models

// Training and inference throughput of vtl's models next to PyTorch's torchvision models
// (eager and torch.compile), measured in the same run with the same method: the GPU
// comparison of docs/performance.md. Needs only the core, weights and models layers (no
// OpenCV, FAISS or Google Benchmark), so it builds against a CUDA LibTorch alone.
//
//   ./build/bench/model_throughput_bench --device cuda            # the four models, defaults
//   ./build/bench/model_throughput_bench --device cpu --models resnet18 --train-batch 4 \
//       --infer-batch 8 --size 64 --steps 2 --warmup 1 --threads 1   # a quick check
//
// Options: --models a,b  --modes train,infer,features,finetune (all)  --finetune-from BLOCK
//   (layer4; models without that stage skip finetune)
//   --train-batch N (256)  --infer-batch N (512)  --size PX (224)
//   --steps N (20)  --warmup N (5)  --precision bf16|f32  --no-channels-last
//   --cudnn-benchmark  --compile a,b (models the reference also runs with torch.compile;
//   default resnet50)  --reference PYTHON|none (default /usr/bin/python3 or $VTL_PYTHON)
//   --threads N (CPU)  --libtorch-sgd (LibTorch's per-parameter SGD step instead of vtl's
//   multi-tensor one)  --fused-sgd (ATen's fused SGD kernel, LibTorch >= 2.4)  --cuda-graph (also
//   each mode with the step captured in a CUDA graph: rows "MODE+graph", compared with PyTorch's
//   MODE)  --no-fold (BatchNorm as a layer of its own everywhere, instead of folded where vtl folds
//   it)
// Method (both sides): training step = SGD (lr 0.01, momentum 0.9), cross-entropy on random
// labels, forward under bf16 autocast, gradients set to none, backward, step; inference = eval
// mode, inference mode, autocast. Modes: train (whole network), infer (logits), features (the
// frozen base's globally average-pooled features), finetune (base frozen before
// --finetune-from with BatchNorm on running statistics, that block and a new dropout 0.2 +
// linear head train; the frozen prefix runs no backward). vtl runs each mode as its commands
// do: BatchNorm folded into the convolutions in infer and features, and in the frozen prefix
// of finetune (--no-fold: never); PyTorch eager has no folding. Output: one JSON line per
// measurement, then a table with the ratios C++ / eager and C++ / compiled (> 1: vtl is faster) and
// fine-tune / full training.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#if VTL_BENCH_CUDA_GRAPHS
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif
#include <nlohmann/json.hpp>

#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/core/text.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/registry.h"
#include "vtl/models/transfer_model.h"
#include "vtl/train/freeze.h"
#include "vtl/train/mixed_precision.h"
#include "vtl/train/multi_tensor_optim.h"

// ATen's fused SGD kernel (PyTorch's SGD(fused=True)) has CPU and CUDA kernels from 2.4 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define VTL_BENCH_FUSED_SGD 1
#else
#define VTL_BENCH_FUSED_SGD 0
#endif

namespace {

struct Settings {
  std::string device = "cuda";
  std::vector<std::string> models = {"resnet50", "efficientnet_b0", "mobilenet_v3_large", "vgg16"};
  int64_t train_batch = 256, infer_batch = 512, size = 224;
  int steps = 20, warmup = 5, threads = 0;
  std::string precision = "bf16";
  bool channels_last = true, cudnn_benchmark = false;
  std::string compile = "resnet50";
  std::string reference;
  std::vector<std::string> modes = {"train", "infer", "features", "finetune"};
  std::string finetune_from = "layer4";
  bool libtorch_sgd = false;
  bool fused_sgd = false;
  bool cuda_graph = false;
  bool no_fold = false;
};

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

/// What one measurement runs (the same on the reference side).
enum class Mode {
  train,     ///< the whole network trains (SGD step), BatchNorm on batch statistics
  infer,     ///< eval mode, inference mode: logits
  features,  ///< the frozen base's pooled features [N, C] (extraction, the feature cache)
  finetune,  ///< TransferModel: base frozen up to `finetune_from`, base BatchNorm on running
             ///< statistics, dropout 0.2 + linear head; SGD on the trainable parameters
};

const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::train:
      return "train";
    case Mode::infer:
      return "infer";
    case Mode::features:
      return "features";
    case Mode::finetune:
      return "finetune";
  }
  return "";
}

Mode parse_mode(const std::string& text) {
  for (Mode mode : {Mode::train, Mode::infer, Mode::features, Mode::finetune})
    if (text == to_string(mode)) return mode;
  std::cerr << "unknown mode " << text << " (train, infer, features, finetune)\n";
  std::exit(2);
}

#if VTL_BENCH_FUSED_SGD
/// SGD with momentum whose step is ATen's fused kernel: one launch updates every parameter
/// (PyTorch's SGD(fused=True)). Momentum buffers are its own (no checkpoints here).
class FusedSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    for (auto& group : param_groups()) {
      const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
      std::vector<torch::Tensor> params, grads, buffers;
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        auto& buffer = buffers_[p.unsafeGetTensorImpl()];
        if (!buffer.defined()) buffer = torch::zeros_like(p);
        params.push_back(p);
        grads.push_back(p.grad());
        buffers.push_back(buffer);
      }
      if (params.empty()) continue;
      at::_fused_sgd_(params, grads, buffers, options.weight_decay(), options.momentum(),
                      options.lr(), options.dampening(), options.nesterov(),
                      /*maximize=*/false, /*is_first_step=*/first_step_);
    }
    first_step_ = false;
    return {};
  }

 private:
  std::map<c10::TensorImpl*, torch::Tensor> buffers_;
  bool first_step_ = true;
};
#endif

std::unique_ptr<torch::optim::Optimizer> make_fused_sgd(const std::vector<torch::Tensor>& params,
                                                        const torch::optim::SGDOptions& options) {
#if VTL_BENCH_FUSED_SGD
  return std::make_unique<FusedSGD>(params, options);
#else
  VTL_CHECK(false, "--fused-sgd needs LibTorch 2.4 or newer (this is {})", TORCH_VERSION);
  return nullptr;
#endif
}

bool is_training(Mode mode) { return mode == Mode::train || mode == Mode::finetune; }

/// Images per second of `steps` timed steps after `warmup` untimed ones. With `graph`
/// (CUDA only), one step is captured into a CUDA graph after the warm-up and the timed
/// steps replay it: PyTorch's whole-network capture (warm-up on a side stream, gradients
/// set to none before the capture, autocast's weight cache off). nullopt: `finetune` on a
/// model without the stage --finetune-from names (resnets have "layer4").
std::optional<double> measure(const Settings& s, const std::string& name, Mode mode, int64_t batch,
                              bool graph) {
  const torch::Device device(s.device);
  torch::manual_seed(0);
  const bool whole_model = mode == Mode::train || mode == Mode::infer;
  vtl::models::Model network =
      vtl::models::create_model(name, vtl::models::ModelOptions().include_top(whole_model));
  if (mode == Mode::finetune) {
    const auto taps = network->tap_names();
    if (std::find(taps.begin(), taps.end(), s.finetune_from) == taps.end()) return std::nullopt;
  }
  vtl::models::TransferModel transfer = nullptr;
  std::shared_ptr<torch::nn::Module> module = network.ptr();
  if (!whole_model) {
    transfer = vtl::models::TransferModel(network, 1000, 0.2);
    vtl::train::freeze_base(transfer);
    if (mode == Mode::finetune) vtl::train::unfreeze_from(transfer, s.finetune_from);
    module = transfer.ptr();
  }
  // BatchNorm folded into the convolutions where vtl folds it: for good in inference (vtl
  // predict, evaluate, extract and the feature cache), while it runs in the frozen prefix
  // of fine-tuning (the trainer).
  if (!s.no_fold && (mode == Mode::infer || mode == Mode::features)) {
    network->eval();
    vtl::models::fold_batch_norms(*network);
  }
  module->to(device);
  auto x = torch::randn({batch, 3, s.size, s.size}, device);
  if (s.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : module->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  const auto y = torch::randint(0, 1000, {batch}, torch::TensorOptions(device).dtype(torch::kLong));
  std::vector<torch::Tensor> trainable;
  for (auto& p : module->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  // vtl's trainer's SGD (multi-tensor step, as PyTorch's default foreach SGD on CUDA), or
  // LibTorch's per-parameter step with --libtorch-sgd.
  const auto sgd = torch::optim::SGDOptions(0.01).momentum(0.9);
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (s.libtorch_sgd)
    optimizer = std::make_unique<torch::optim::SGD>(trainable, sgd);
  else if (s.fused_sgd)
    optimizer = make_fused_sgd(trainable, sgd);
  else
    optimizer = std::make_unique<vtl::train::MultiTensorSGD>(trainable, sgd);
  std::optional<vtl::models::FoldedBatchNorms> folded;
  if (mode == Mode::finetune && !s.no_fold) {
    vtl::train::set_training_mode(transfer, /*base_trains=*/false, /*train_bn=*/false);
    folded.emplace(*network);
  }
  const auto precision = vtl::train::parse_precision(s.precision);
  const auto step = [&](bool zero_grad) {
    if (is_training(mode)) {
      if (mode == Mode::train)
        module->train();
      else
        vtl::train::set_training_mode(transfer, /*base_trains=*/false, /*train_bn=*/false);
      torch::Tensor loss;
      {
        vtl::train::AutocastScope autocast(precision, device);
        const auto logits = mode == Mode::train ? network->forward(x) : transfer->forward(x);
        loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), y);
      }
      if (zero_grad) vtl::train::set_gradients_to_none(*optimizer);
      loss.backward();
      optimizer->step();
    } else {
      module->eval();
      torch::InferenceMode inference;
      vtl::train::AutocastScope autocast(precision, device);
      if (mode == Mode::infer)
        network->forward(x);
      else
        transfer->features(x);
    }
  };
  if (!graph) {
    for (int i = 0; i < s.warmup; ++i) step(true);
    synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < s.steps; ++i) step(true);
    synchronize(device);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return double(batch) * s.steps / seconds;
  }
#if VTL_BENCH_CUDA_GRAPHS
  VTL_CHECK(device.is_cuda(), "--cuda-graph needs --device cuda");
  auto side = c10::cuda::getStreamFromPool();
  synchronize(device);
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    for (int i = 0; i < std::max(3, s.warmup); ++i) step(true);
  }
  synchronize(device);
  at::cuda::CUDAGraph captured;
  const bool cache_was_enabled = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  // Gradients are allocated inside the capture, then stay put.
  vtl::train::set_gradients_to_none(*optimizer);
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    captured.capture_begin();
    step(false);
    captured.capture_end();
  }
  at::autocast::set_autocast_cache_enabled(cache_was_enabled);
  synchronize(device);
  captured.replay();  // the first replay uploads the graph
  synchronize(device);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < s.steps; ++i) captured.replay();
  synchronize(device);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return double(batch) * s.steps / seconds;
#else
  VTL_CHECK(false, "--cuda-graph: this build's LibTorch has no CUDA");
  return 0;
#endif
}

/// Runs the Python reference; returns its measurements keyed "model/mode/compiled".
std::map<std::string, double> run_reference(const Settings& s) {
  std::map<std::string, double> out;
  if (s.reference == "none") return out;
  std::string models;
  for (const auto& name : s.models) models += (models.empty() ? "" : ",") + name;
  const std::string command =
      s.reference + " " + VTL_BENCH_DIR + "/torch_throughput.py --device " + s.device +
      " --models " + models + " --train-batch " + std::to_string(s.train_batch) +
      " --infer-batch " + std::to_string(s.infer_batch) + " --size " + std::to_string(s.size) +
      " --steps " + std::to_string(s.steps) + " --warmup " + std::to_string(s.warmup) +
      " --precision " + s.precision + (s.channels_last ? "" : " --no-channels-last") +
      (s.cudnn_benchmark ? " --cudnn-benchmark" : "") + " --compile '" + s.compile + "'" +
      " --modes " + fmt::format("{}", fmt::join(s.modes, ",")) + " --finetune-from " +
      s.finetune_from + (s.threads > 0 ? " --threads " + std::to_string(s.threads) : "");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  std::array<char, 1024> line{};
  while (fgets(line.data(), line.size(), pipe.get())) {
    std::cout << line.data() << std::flush;
    const auto json = nlohmann::json::parse(line.data(), nullptr, false);
    if (!json.is_object() || !json.contains("img_per_s")) continue;
    out[fmt::format("{}/{}/{}", json["model"].get<std::string>(), json["mode"].get<std::string>(),
                    json["compiled"].get<bool>())] = json["img_per_s"].get<double>();
  }
  return out;
}

Settings parse(int argc, char** argv) {
  Settings s;
  const char* python = std::getenv("VTL_PYTHON");
  s.reference = python ? python : "/usr/bin/python3";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << flag << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--device")
      s.device = value();
    else if (flag == "--models")
      s.models = vtl::split_list(value());
    else if (flag == "--train-batch")
      s.train_batch = std::stoll(value());
    else if (flag == "--infer-batch")
      s.infer_batch = std::stoll(value());
    else if (flag == "--size")
      s.size = std::stoll(value());
    else if (flag == "--steps")
      s.steps = std::stoi(value());
    else if (flag == "--warmup")
      s.warmup = std::stoi(value());
    else if (flag == "--threads")
      s.threads = std::stoi(value());
    else if (flag == "--precision")
      s.precision = value();
    else if (flag == "--no-channels-last")
      s.channels_last = false;
    else if (flag == "--cudnn-benchmark")
      s.cudnn_benchmark = true;
    else if (flag == "--compile")
      s.compile = value();
    else if (flag == "--reference")
      s.reference = value();
    else if (flag == "--modes") {
      s.modes = vtl::split_list(value());
      for (const auto& mode : s.modes) parse_mode(mode);  // exits on an unknown one
    } else if (flag == "--finetune-from")
      s.finetune_from = value();
    else if (flag == "--libtorch-sgd")
      s.libtorch_sgd = true;
    else if (flag == "--fused-sgd")
      s.fused_sgd = true;
    else if (flag == "--no-fold")
      s.no_fold = true;
    else if (flag == "--cuda-graph")
      s.cuda_graph = true;
    else {
      std::cerr << "unknown option " << flag
                << " (see the top of bench/model_throughput_bench.cpp)\n";
      std::exit(2);
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings s = parse(argc, argv);
  if (s.threads > 0) vtl::configure_threads(s.threads);
  if (s.device.rfind("cuda", 0) == 0 && !torch::cuda::is_available()) {
    std::cerr << "--device " << s.device << ": this LibTorch sees no CUDA device\n";
    return 1;
  }
  at::globalContext().setBenchmarkCuDNN(s.cudnn_benchmark);
  std::cout
      << nlohmann::json{{"side", "vtl"}, {"torch", TORCH_VERSION}, {"device", s.device}}.dump()
      << std::endl;
  std::map<std::string, double> vtl_rates;
  const auto batch_for = [&](Mode mode) {
    return is_training(mode) ? s.train_batch : s.infer_batch;
  };
  // Rows: each mode, then "MODE+graph" with --cuda-graph.
  std::vector<std::string> rows;
  for (const auto& mode : s.modes) rows.push_back(mode);
  if (s.cuda_graph)
    for (const auto& mode : s.modes) rows.push_back(mode + "+graph");
  const auto mode_of = [](const std::string& row) { return row.substr(0, row.find('+')); };
  for (const auto& name : s.models) {
    for (const auto& row : rows) {
      const Mode mode = parse_mode(mode_of(row));
      nlohmann::json line{
          {"side", "vtl"}, {"model", name}, {"mode", row}, {"batch", batch_for(mode)}};
      try {
        const auto rate = measure(s, name, mode, batch_for(mode), row != mode_of(row));
        if (!rate) continue;
        vtl_rates[name + "/" + row] = *rate;
        line["img_per_s"] = std::round(*rate * 10) / 10;
      } catch (const std::exception& e) {  // one failed measurement does not end the run
        line["error"] = e.what();
      }
      std::cout << line.dump() << std::endl;
    }
  }
  const auto reference = run_reference(s);
  const auto reference_rate = [&](const std::string& name, const std::string& mode, bool compiled) {
    const auto it = reference.find(fmt::format("{}/{}/{}", name, mode, compiled));
    return it == reference.end() ? 0.0 : it->second;
  };
  std::cout << "\n| model | mode | batch | vtl img/s | PyTorch eager | vtl / eager | "
               "torch.compile | vtl / compiled |\n| --- | --- | ---: | ---: | ---: | "
               "---: | ---: | ---: |\n";
  for (const auto& name : s.models) {
    for (const auto& mode : rows) {
      const auto found = vtl_rates.find(name + "/" + mode);
      if (found == vtl_rates.end()) continue;
      const double rate = found->second;
      const auto cell = [&](bool compiled, bool ratio) -> std::string {
        const double theirs = reference_rate(name, mode_of(mode), compiled);
        if (theirs <= 0) return "";
        return ratio ? fmt::format("{:.2f}", rate / theirs) : fmt::format("{:.1f}", theirs);
      };
      std::cout << fmt::format("| {} | {} | {} | {:.1f} | {} | {} | {} | {} |\n", name, mode,
                               batch_for(parse_mode(mode_of(mode))), rate, cell(false, false),
                               cell(false, true), cell(true, false), cell(true, true));
    }
  }
  // Fine-tuning from `finetune_from` against training the whole network, each side.
  for (const auto& name : s.models) {
    const double full = vtl_rates.count(name + "/train") ? vtl_rates[name + "/train"] : 0;
    const double tuned = vtl_rates.count(name + "/finetune") ? vtl_rates[name + "/finetune"] : 0;
    if (full <= 0 || tuned <= 0) continue;
    std::cout << fmt::format(
        "\n{}: fine-tuning from {} runs {:.2f}x the images/s of full "
        "training in vtl",
        name, s.finetune_from, tuned / full);
    const double their_full = reference_rate(name, "train", false);
    const double their_tuned = reference_rate(name, "finetune", false);
    if (their_full > 0 && their_tuned > 0)
      std::cout << fmt::format(", {:.2f}x in PyTorch eager", their_tuned / their_full);
    std::cout << "\n";
  }
  return 0;
}

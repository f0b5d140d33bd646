// Eval-mode forward of a registered model in C++ against Python torchvision on the same
// LibTorch build and thread count, measured in the same run.
//
//   ./build/bench/forward_bench [--model resnet50] [--batch 8] [--size 224] [--repeats 10]
//
// Prints both medians (ms per batch) and the ratio Python / C++ (> 1: C++ is faster).

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "vtl/core/runtime.h"
#include "vtl/models/registry.h"

namespace {

struct Settings {
  std::string model = "resnet50";
  int64_t batch = 8;
  int64_t size = 224;
  int repeats = 10;
};

Settings g_settings;

void BM_Forward(benchmark::State& state) {
  auto model = vtl::models::create_model(g_settings.model);
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({g_settings.batch, 3, g_settings.size, g_settings.size});
  for (int i = 0; i < 2; ++i) model->forward(x);
  for (auto _ : state) {
    auto y = model->forward(x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["img/s"] = benchmark::Counter(double(state.iterations() * g_settings.batch),
                                               benchmark::Counter::kIsRate);
}

/// Median ms per batch of the Python reference, run as a child process.
double python_reference_ms(int threads) {
  const std::string command =
      "/usr/bin/python3 " + std::string(VTL_BENCH_DIR) + "/torchvision_forward.py --model " +
      g_settings.model + " --batch " + std::to_string(g_settings.batch) + " --size " +
      std::to_string(g_settings.size) + " --threads " + std::to_string(threads) + " --repeats " +
      std::to_string(g_settings.repeats);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return -1;
  std::string output;
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe.get())) output += buffer.data();
  try {
    return nlohmann::json::parse(output).at("ms_per_batch").get<double>();
  } catch (...) {
    std::cerr << "python reference failed: " << output << "\n";
    return -1;
  }
}

/// Captures the C++ median per-iteration time.
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      if (run.aggregate_name == "median") median_ms = run.GetAdjustedRealTime();
    }
  }
  double median_ms = -1;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--model")
      g_settings.model = next();
    else if (arg == "--batch")
      g_settings.batch = std::stoll(next());
    else if (arg == "--size")
      g_settings.size = std::stoll(next());
    else if (arg == "--repeats")
      g_settings.repeats = std::stoi(next());
    else
      rest.push_back(argv[i]);
  }
  const int threads = vtl::configure_threads();
  std::string repetitions = "--benchmark_repetitions=" + std::to_string(g_settings.repeats);
  std::string report_aggregates = "--benchmark_report_aggregates_only=true";
  rest.push_back(repetitions.data());
  rest.push_back(report_aggregates.data());
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  benchmark::RegisterBenchmark("forward", BM_Forward)->Unit(benchmark::kMillisecond)->Iterations(1);
  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  const double python_ms = python_reference_ms(threads);
  std::printf("\n%s batch %lld at %lldpx, %d threads (median of %d)\n", g_settings.model.c_str(),
              static_cast<long long>(g_settings.batch), static_cast<long long>(g_settings.size),
              threads, g_settings.repeats);
  std::printf("  C++ vtl            %8.1f ms/batch\n", reporter.median_ms);
  std::printf("  Python torchvision %8.1f ms/batch\n", python_ms);
  if (python_ms > 0 && reporter.median_ms > 0) {
    std::printf("  ratio Python / C++ %8.2f  (> 1 means C++ is faster)\n",
                python_ms / reporter.median_ms);
  }
  return 0;
}

// Similarity-search benchmark: recall@10 against exact search and queries/s for Flat,
// HNSW32 and IVF-PQ, on clustered synthetic vectors and (optionally) real features.
//
//   search_bench                                  100k x 2048 synthetic (VTL_BENCH_N, _DIM)
//   VTL_BENCH_FEATURES=features_dir search_bench  also a `vtl extract` folder
// Queries: 1,000 held-out vectors searched as one batch (faiss parallelises over them);
// items_per_second = queries/s (wall clock). recall@10 = |top-10 ∩ exact top-10| / 10, averaged.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include "vtl/embed/extract.h"
#include "vtl/search/vector_index.h"

namespace {

using vtl::search::Metric;
using vtl::search::VectorIndex;

int64_t env_int(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value ? std::atoll(value) : fallback;
}

struct Dataset {
  torch::Tensor base, queries;
  std::vector<std::vector<int64_t>> truth;  ///< exact top-10 per query
};

/// Gaussian clusters: `n` vectors around n/100 centres, plus 1,000 queries near them.
Dataset synthetic(int64_t n, int64_t dim) {
  torch::manual_seed(0);
  const int64_t clusters = std::max<int64_t>(n / 100, 10);
  auto centres = torch::randn({clusters, dim});
  auto assign = torch::randint(0, clusters, {n + 1000}, torch::kLong);
  auto all = centres.index_select(0, assign) + 0.3 * torch::randn({n + 1000, dim});
  return {all.slice(0, 0, n).contiguous(), all.slice(0, n).contiguous(), {}};
}

Dataset real_features(const std::string& dir) {
  auto set = vtl::embed::load_features(dir);
  const int64_t n = set.features.size(0);
  const int64_t queries = std::min<int64_t>(1000, n / 10);
  return {set.features.slice(0, 0, n - queries).contiguous(),
          set.features.slice(0, n - queries).contiguous(),
          {}};
}

Dataset& dataset(const std::string& name) {
  static std::map<std::string, Dataset> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Dataset data = name == "synthetic"
                     ? synthetic(env_int("VTL_BENCH_N", 100000), env_int("VTL_BENCH_DIM", 2048))
                     : real_features(std::getenv("VTL_BENCH_FEATURES"));
  VectorIndex exact(data.base.size(1), "Flat", Metric::l2);
  exact.add(data.base);
  for (const auto& hits : exact.search(data.queries, 10)) {
    std::vector<int64_t> ids;
    for (const auto& h : hits) ids.push_back(h.id);
    data.truth.push_back(ids);
  }
  return cache.emplace(name, std::move(data)).first->second;
}

void BM_Search(benchmark::State& state, std::string data_name, std::string factory,
               int64_t effort) {
  auto& data = dataset(data_name);
  const auto build_start = std::chrono::steady_clock::now();
  VectorIndex index(data.base.size(1), factory, Metric::l2);
  index.train(data.base);
  index.add(data.base);
  index.set_search_effort(effort);
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
  double recall = 0;
  for (auto _ : state) {
    auto hits = index.search(data.queries, 10);
    state.PauseTiming();
    recall = 0;
    for (size_t q = 0; q < hits.size(); ++q) {
      std::set<int64_t> truth(data.truth[q].begin(), data.truth[q].end());
      for (const auto& h : hits[q]) recall += truth.count(h.id);
    }
    recall /= 10.0 * hits.size();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * data.queries.size(0));
  state.counters["recall@10"] = recall;
  state.counters["build_s"] = build_s;
  state.counters["n"] = static_cast<double>(data.base.size(0));
  state.counters["dim"] = static_cast<double>(data.base.size(1));
  state.SetLabel(factory);
}

void register_all() {
  std::vector<std::string> sets = {"synthetic"};
  if (std::getenv("VTL_BENCH_FEATURES")) sets.push_back("features");
  for (const auto& set : sets) {
    const bool small = set != "synthetic";
    const std::vector<std::pair<std::string, int64_t>> configs = {
        {"Flat", 0}, {"HNSW32", 64}, {"HNSW32", 256}, {small ? "IVF16,PQ16" : "IVF256,PQ32", 16}};
    for (const auto& [factory, effort] : configs) {
      benchmark::RegisterBenchmark(
          (set + "/" + factory + "/effort:" + std::to_string(effort)).c_str(),
          [set = set, factory = factory, effort = effort](benchmark::State& s) {
            BM_Search(s, set, factory, effort);
          })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0)
          ->UseRealTime();  // faiss searches on OpenMP threads: report wall time
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

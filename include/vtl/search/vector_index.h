#pragma once
// A FAISS index over fixed-width float vectors whose ids are the insertion order
// (0, 1, 2, ...), the same ids the catalogue uses.
//
// Factory strings follow faiss' index_factory grammar; the ones documented and tested
// here: "Flat" (exact), "HNSW32" (graph, no training), "IVF<nlist>,Flat" and
// "IVF<nlist>,PQ<m>" (need training on at least nlist vectors; m must divide the width).
// Metric cosine = vectors L2-normalized on the way in + inner product (score: cosine
// similarity, higher is closer); l2 = squared Euclidean distance (lower is closer).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace faiss {
struct Index;
}

namespace vtl::search {

enum class Metric { cosine, l2 };
std::string to_string(Metric metric);
/// Parses "cosine" or "l2"; throws vtl::Error otherwise.
Metric parse_metric(const std::string& text);

/// One search result.
struct Hit {
  int64_t id = -1;
  float score = 0;  ///< cosine similarity or squared L2 distance, per the metric
};

/// Owns its FAISS index (move-only). Vectors may be any float dtype and device; they are
/// copied to float32 on the CPU. Thread safety: const members (search, reconstruct) may
/// run concurrently; train, add, save and set_search_effort need exclusive access.
class VectorIndex {
 public:
  /// An empty index; throws vtl::Error for a factory string faiss does not accept.
  VectorIndex(int64_t dim, const std::string& factory, Metric metric);
  /// Reads an index written by save(); throws vtl::Error naming the file.
  static VectorIndex load(const std::filesystem::path& path, Metric metric);
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  /// Writes to a temporary sibling and renames it over `path`.
  void save(const std::filesystem::path& path) const;

  bool is_trained() const;
  /// Trains (IVF quantizers) on [n, dim] vectors; a no-op for indexes that need none.
  /// Too few vectors for the factory is a vtl::Error saying how many are needed.
  void train(const torch::Tensor& vectors);
  /// Appends [n, dim] vectors; they get ids size() .. size()+n-1.
  void add(const torch::Tensor& vectors);
  /// For each row of float [q, dim] queries, up to k hits, closest first.
  std::vector<std::vector<Hit>> search(const torch::Tensor& queries, int64_t k) const;
  /// Up to k hits for one float [dim] query, closest first.
  std::vector<Hit> search_one(const torch::Tensor& query, int64_t k) const;
  /// The stored (for PQ: approximate) vector of `id`, as searched (normalized for cosine).
  torch::Tensor reconstruct(int64_t id) const;

  int64_t size() const;
  int64_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  /// HNSW efSearch / IVF nprobe (0 leaves faiss' default).
  void set_search_effort(int64_t effort);

 private:
  VectorIndex(std::unique_ptr<faiss::Index> index, Metric metric);
  torch::Tensor prepare(const torch::Tensor& vectors) const;

  std::unique_ptr<faiss::Index> index_;
  int64_t dim_ = 0;
  Metric metric_ = Metric::cosine;
};

}  // namespace vtl::search

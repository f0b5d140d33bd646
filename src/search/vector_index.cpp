#include "vtl/search/vector_index.h"

#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <fmt/ranges.h>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::search {

std::string to_string(Metric metric) { return metric == Metric::cosine ? "cosine" : "l2"; }

Metric parse_metric(const std::string& text) {
  if (text == "cosine") return Metric::cosine;
  if (text == "l2") return Metric::l2;
  fail("unknown metric '{}': expected cosine or l2", text);
}

namespace {

/// Short form of a faiss exception (its message carries file and function names).
std::string faiss_message(const faiss::FaissException& e) {
  return e.msg.empty() ? std::string(e.what()) : e.msg;
}

/// The IVF part of an index (possibly behind a pre-transform), or null.
faiss::IndexIVF* ivf_of(faiss::Index* index) {
  return const_cast<faiss::IndexIVF*>(faiss::ivflib::try_extract_index_ivf(index));
}

}  // namespace

VectorIndex::VectorIndex(int64_t dim, const std::string& factory, Metric metric)
    : dim_(dim), metric_(metric) {
  VTL_CHECK(dim > 0, "vector width must be positive");
  try {
    index_.reset(faiss::index_factory(
        static_cast<int>(dim), factory.c_str(),
        metric == Metric::cosine ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2));
  } catch (const faiss::FaissException& e) {
    fail("invalid index factory '{}' for {}-d vectors: {}", factory, dim, faiss_message(e));
  }
}

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index, Metric metric)
    : index_(std::move(index)), dim_(index_->d), metric_(metric) {}

VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

VectorIndex VectorIndex::load(const std::filesystem::path& path, Metric metric) {
  VTL_CHECK(std::filesystem::exists(path), "{} is missing", path.string());
  try {
    std::unique_ptr<faiss::Index> index(faiss::read_index(path.c_str()));
    const auto expected = metric == Metric::cosine ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
    VTL_CHECK(index->metric_type == expected, "{}: stored with another metric than {}",
              path.string(), to_string(metric));
    return VectorIndex(std::move(index), metric);
  } catch (const faiss::FaissException& e) {
    fail("{}: not a readable FAISS index: {}", path.string(), faiss_message(e));
  }
}

void VectorIndex::save(const std::filesystem::path& path) const {
  const auto tmp = temporary_sibling(path);
  try {
    faiss::write_index(index_.get(), tmp.c_str());
  } catch (const faiss::FaissException& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    fail("cannot write {}: {}", path.string(), faiss_message(e));
  }
  commit_file(tmp, path);
}

torch::Tensor VectorIndex::prepare(const torch::Tensor& vectors) const {
  VTL_CHECK(vectors.dim() == 2 && vectors.size(1) == dim_,
            "expected vectors of width {}, got shape [{}]", dim_,
            fmt::format("{}", fmt::join(vectors.sizes(), ", ")));
  auto x = vectors.to(torch::kCPU, torch::kFloat32).contiguous();
  if (metric_ == Metric::cosine) x = (x / x.norm(2, 1, true).clamp_min(1e-12)).contiguous();
  return x;
}

bool VectorIndex::is_trained() const { return index_->is_trained; }

void VectorIndex::train(const torch::Tensor& vectors) {
  if (index_->is_trained) return;
  auto x = prepare(vectors);
  if (auto* ivf = ivf_of(index_.get())) {
    VTL_CHECK(x.size(0) >= static_cast<int64_t>(ivf->nlist),
              "an IVF index with {} lists needs at least {} vectors to train (ideally 39 per "
              "list, {}); got {}: use a smaller nlist or Flat/HNSW32",
              ivf->nlist, ivf->nlist, ivf->nlist * 39, x.size(0));
  }
  try {
    index_->train(x.size(0), x.data_ptr<float>());
  } catch (const faiss::FaissException& e) {
    fail("cannot train the index on {} vectors: {}", x.size(0), faiss_message(e));
  }
}

void VectorIndex::add(const torch::Tensor& vectors) {
  VTL_CHECK(index_->is_trained, "the index must be trained before vectors are added");
  auto x = prepare(vectors);
  if (x.size(0) == 0) return;
  try {
    index_->add(x.size(0), x.data_ptr<float>());
  } catch (const faiss::FaissException& e) {
    fail("cannot add {} vectors to the index: {}", x.size(0), faiss_message(e));
  }
}

std::vector<Hit> VectorIndex::search_one(const torch::Tensor& query, int64_t k) const {
  VTL_CHECK(query.dim() == 1, "expected one vector of width {}, got shape [{}]", dim_,
            fmt::format("{}", fmt::join(query.sizes(), ", ")));
  return search(query.unsqueeze(0), k).front();
}

std::vector<std::vector<Hit>> VectorIndex::search(const torch::Tensor& queries, int64_t k) const {
  VTL_CHECK(k > 0, "k must be positive");
  auto x = prepare(queries);
  const int64_t n = x.size(0);
  std::vector<std::vector<Hit>> out(n);
  if (index_->ntotal == 0 || n == 0) return out;
  k = std::min<int64_t>(k, index_->ntotal);
  std::vector<float> distances(n * k);
  std::vector<faiss::Index::idx_t> labels(n * k);
  try {
    index_->search(n, x.data_ptr<float>(), k, distances.data(), labels.data());
  } catch (const faiss::FaissException& e) {
    fail("search failed: {}", faiss_message(e));
  }
  for (int64_t q = 0; q < n; ++q) {
    for (int64_t j = 0; j < k; ++j) {
      if (labels[q * k + j] < 0) continue;  // fewer than k reachable (IVF probes)
      out[q].push_back({labels[q * k + j], distances[q * k + j]});
    }
  }
  return out;
}

torch::Tensor VectorIndex::reconstruct(int64_t id) const {
  VTL_CHECK(id >= 0 && id < index_->ntotal, "no vector with id {}", id);
  auto out = torch::empty({dim_}, torch::kFloat32);
  try {
    if (auto* ivf = ivf_of(index_.get())) {
      if (ivf->direct_map.type == faiss::DirectMap::NoMap) ivf->make_direct_map(true);
    }
    index_->reconstruct(id, out.data_ptr<float>());
  } catch (const faiss::FaissException& e) {
    fail("cannot reconstruct vector {}: {}", id, faiss_message(e));
  }
  return out;
}

int64_t VectorIndex::size() const { return index_->ntotal; }

void VectorIndex::set_search_effort(int64_t effort) {
  if (effort <= 0) return;
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index_.get())) {
    hnsw->hnsw.efSearch = static_cast<int>(effort);
  } else if (auto* ivf = ivf_of(index_.get())) {
    ivf->nprobe = static_cast<size_t>(effort);
  }
}

}  // namespace vtl::search

// vtl search INDEX IMAGE|FOLDER... [-k 10] [--exclude-query] [--device cpu|cuda[:N]] [--json]
// vtl search INDEX --vector FILE.npy [-k 10] [--json]
// vtl search INDEX --duplicates [--threshold T] [--json]

#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/sha256.h"
#include "vtl/data/batch_reader.h"
#include "vtl/data/image.h"
#include "vtl/embed/npy.h"
#include "vtl/models/device.h"
#include "vtl/search/image_index.h"

namespace vtl::cli {
namespace {

struct SearchArgs {
  std::string index;
  std::vector<std::string> images;
  std::string vector;
  int64_t k = 10;
  int64_t effort = 0;
  bool duplicates = false;
  std::optional<double> threshold;  ///< --threshold; default by metric
  std::string device = "cpu";
  std::string moved_weights;  ///< --weights: where the index's weights are now
  bool exclude_query = false;
  bool json = false;
};

nlohmann::json result_json(const search::SearchResult& r) {
  return {{"id", r.entry.id},
          {"score", r.score},
          {"path", r.entry.path},
          {"label", r.entry.label >= 0 ? nlohmann::json(r.entry.label) : nlohmann::json()},
          {"class", r.entry.class_name}};
}

void print_results(const std::string& query, const std::vector<search::SearchResult>& results,
                   search::Metric metric) {
  fmt::print("{}\n", query);
  fmt::print("  {:>4}  {:>8}  {:<12}  {}\n", "rank",
             metric == search::Metric::cosine ? "cosine" : "l2^2", "class", "path");
  for (size_t i = 0; i < results.size(); ++i) {
    fmt::print("  {:>4}  {:>8.4f}  {:<12}  {}\n", i + 1, results[i].score,
               results[i].entry.class_name, results[i].entry.path);
  }
}

/// A --vector file: .npy [dim] or [n, dim]; when it sits in a features folder, the
/// features.json beside it must describe the same extractor as the index.
torch::Tensor read_query_vectors(const std::string& file, const search::ImageIndex& index) {
  auto vectors = embed::read_npy(file).to(torch::kFloat32);
  if (vectors.dim() == 1) vectors = vectors.unsqueeze(0);
  VTL_CHECK(vectors.dim() == 2,
            "{}: expected vectors of shape [dim] or [n, dim], got {} dimensions", file,
            vectors.dim());
  embed::check_finite_rows(vectors, file);
  const auto description = std::filesystem::path(file).parent_path() / "features.json";
  if (std::filesystem::exists(description)) {
    const auto json = nlohmann::json::parse(read_file(description), nullptr, false);
    VTL_CHECK(!json.is_discarded() && json.contains("spec"), "{}: malformed features.json",
              description.string());
    index.check_query_spec(embed::feature_spec_from_json(json.at("spec"), description.string()));
  }
  VTL_CHECK(vectors.size(1) == index.spec().dim,
            "{} holds vectors of width {}, but the index {} holds width {} ({} {})", file,
            vectors.size(1), index.dir().string(), index.spec().dim, index.spec().model,
            index.spec().layer);
  return vectors;
}

void run_duplicates(const SearchArgs& args, const search::ImageIndex& index) {
  const bool cosine = index.metric() == search::Metric::cosine;
  if (args.threshold) {
    VTL_CHECK(
        cosine ? (*args.threshold >= -1 && *args.threshold <= 1) : *args.threshold >= 0,
        "--threshold {} is out of range for {}: {}", *args.threshold, args.index,
        cosine ? "a cosine similarity lies in [-1, 1]" : "a squared L2 distance is 0 or more");
  }
  const float threshold = static_cast<float>(args.threshold.value_or(cosine ? 0.98 : 0.01));
  const auto pairs = index.find_duplicates(threshold, args.k);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& pair : pairs) {
    const auto a = index.catalog().get(pair.a), b = index.catalog().get(pair.b);
    if (args.json) {
      out.push_back({{"a", pair.a},
                     {"b", pair.b},
                     {"score", pair.score},
                     {"path_a", a ? a->path : ""},
                     {"path_b", b ? b->path : ""}});
    } else {
      fmt::print("{:.4f}  {}  {}\n", pair.score, a ? a->path : "?", b ? b->path : "?");
    }
  }
  if (args.json) {
    std::cout << json_text(out) << "\n";
  } else {
    fmt::print("{} near-duplicate pairs ({} {} {})\n", pairs.size(),
               cosine ? "cosine >=" : "squared L2 <=", threshold,
               cosine ? "similarity" : "distance");
  }
}

void run_search(const SearchArgs& args) {
  auto index = search::ImageIndex::open(args.index);
  const torch::Device device = models::parse_device(args.device);
  index.vectors().set_search_effort(args.effort);
  if (args.duplicates) {
    VTL_CHECK(args.images.empty() && args.vector.empty(),
              "--duplicates takes no query images or --vector");
    run_duplicates(args, index);
    return;
  }
  VTL_CHECK(!args.images.empty() || !args.vector.empty(),
            "give query IMAGE files, --vector FILE.npy or --duplicates");
  VTL_CHECK(!args.exclude_query || !args.images.empty(),
            "--exclude-query leaves out catalogued copies of query images: give IMAGE files");
  nlohmann::json out = nlohmann::json::array();
  auto emit = [&](const std::string& query, const std::vector<search::SearchResult>& results) {
    if (args.json) {
      nlohmann::json hits = nlohmann::json::array();
      for (const auto& r : results) hits.push_back(result_json(r));
      out.push_back({{"query", query}, {"results", hits}});
    } else {
      print_results(query, results, index.metric());
    }
  };
  if (!args.vector.empty()) {
    const auto vectors = read_query_vectors(args.vector, index);
    const auto results = index.search(vectors, args.k);
    for (size_t i = 0; i < results.size(); ++i)
      emit(fmt::format("{}[{}]", args.vector, i), results[i]);
  }
  size_t queries = 0, unreadable = 0;
  if (!args.images.empty()) {
    auto extractor = embed::extractor_for_spec(index.spec(), args.moved_weights);
    extractor.to(device);
    index.check_query_spec(extractor.spec());
    const auto images = expand_image_arguments("vtl search", args.images);
    queries = images.size();
    data::BatchReader reader(
        images, 32, [&](const std::filesystem::path& path) { return extractor.load(path); });
    unreadable = answer_each_image(
        reader, images,
        [&](const data::ImageBatch& batch) {
          // --exclude-query: each readable query's own bytes are left out of its results.
          std::vector<std::string> leave_out;
          for (size_t i = 0; args.exclude_query && i < batch.size(); ++i)
            if (batch.errors[i].empty()) leave_out.push_back(sha256_file(images[batch.first + i]));
          return index.search(extractor.embed(batch.stacked()), args.k, leave_out);
        },
        [&](const std::string& query, const std::vector<search::SearchResult>& results) {
          emit(query, results);
        },
        [&](const std::string& query, const std::string& error) {
          if (args.json) out.push_back({{"query", query}, {"error", error}});
        });
  }
  if (args.json) std::cout << json_text(out, 2) << "\n";
  VTL_CHECK(unreadable == 0, "{} of {} query images could not be read", unreadable, queries);
}

void add_search_command(CLI::App& app) {
  auto args = std::make_shared<SearchArgs>();
  auto* cmd = app.add_subcommand("search", "Find the most similar catalogued images");
  cmd->add_option("index", args->index, "Index folder (vtl index build)")->required();
  cmd->add_option("images", args->images, "Query images, or folders (every image under them)");
  cmd->add_option("--vector", args->vector, "Query vectors in a .npy file ([dim] or [n, dim])");
  cmd->add_option("-k", args->k, "Results per query (default 10)")->check(CLI::PositiveNumber);
  cmd->add_option("--effort", args->effort, "HNSW efSearch / IVF nprobe (default: faiss')");
  cmd->add_flag("--exclude-query", args->exclude_query,
                "Leave out the catalogued image with the query's own bytes (more like this)");
  cmd->add_flag("--duplicates", args->duplicates, "List near-duplicate pairs in the index");
  cmd->add_option("--threshold", args->threshold,
                  "Duplicates: cosine similarity >= T (default 0.98) or squared L2 <= T");
  cmd->add_option("--device", args->device,
                  "Where query images are embedded: cpu (default), cuda or cuda:N");
  cmd->add_option("--weights", args->moved_weights,
                  "Where the weights file or trained model folder that made the index is now, if "
                  "it moved (the same bytes)");
  cmd->add_flag("--json", args->json, "Print results as JSON");
  add_max_image_pixels_option(cmd);
  cmd->callback([args] { run_search(*args); });
}

}  // namespace

VTL_COMMAND(46, add_search_command);

}  // namespace vtl::cli

#include "vtl/embed/backbone_comparison.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/embed/extractor.h"
#include "vtl/models/device.h"
#include "vtl/models/registry.h"
#include "vtl/models/stats.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/store.h"

namespace vtl::embed {
namespace fs = std::filesystem;

namespace {

/// The weights argument for `model` (BackboneOptions::weights), or a skip reason.
struct WeightsChoice {
  std::string weights;
  std::string skip_reason;
};

WeightsChoice choose_weights(const std::string& model, const std::string& from) {
  if (from == "random") return {"random", ""};
  if (from == "catalogue") {
    if (weights::weights_for(model).empty())
      return {"", fmt::format("the catalogue has no weights for {}; use --weights-from DIR with "
                              "a .pth or .safetensors file",
                              model)};
    const auto& entry = weights::find_weights(model);  // the architecture's default entry
    if (!weights::locate_weights(entry))
      return {"", fmt::format("{} is not in {}: get it with `vtl weights fetch {}` (or `vtl "
                              "weights import FILE` for a file you have)",
                              entry.name, weights::weights_dir().string(), entry.name)};
    return {entry.name, ""};
  }
  std::error_code ec;
  VTL_CHECK(fs::is_directory(from, ec),
            "--weights-from {}: expected catalogue, random or a folder of weights files", from);
  std::vector<fs::path> matches;
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const auto path = entry.path();
    const auto ext = path.extension().string();
    if (ext != ".pth" && ext != ".pt" && ext != ".safetensors") continue;
    const auto stem = path.stem().string();
    if (stem == model) return {path.string(), ""};  // an exact name wins
    if (stem.rfind(model + "-", 0) == 0 || stem.rfind(model + ".", 0) == 0) matches.push_back(path);
  }
  if (matches.empty())
    return {"", fmt::format("no {0}.pth, {0}-*.pth or {0}.*.safetensors in {1}", model, from)};
  std::sort(matches.begin(), matches.end());
  return {matches.front().string(), ""};
}

std::string millions(int64_t count) { return fmt::format("{:.1f}M", double(count) / 1e6); }

}  // namespace

Recommendation recommend(const std::vector<CandidateResult>& candidates, double budget_ms) {
  Recommendation r;
  std::vector<const CandidateResult*> eligible;
  int64_t measured = 0;
  for (const auto& c : candidates) {
    if (c.skipped()) continue;
    ++measured;
    if (budget_ms <= 0 || c.ms_per_image_batch1 <= budget_ms) eligible.push_back(&c);
  }
  if (eligible.empty()) {
    r.note = measured == 0 ? "no model could be compared"
                           : fmt::format("no model runs within {} ms/image", budget_ms);
    return r;
  }
  const auto* best = *std::max_element(eligible.begin(), eligible.end(), [](auto* a, auto* b) {
    return a->probe.mean_accuracy < b->probe.mean_accuracy;
  });
  r.most_accurate = best->model;
  const CandidateResult *fastest = nullptr, *smallest = nullptr;
  for (const auto* c : eligible) {
    const double gap = best->probe.mean_accuracy - c->probe.mean_accuracy;
    if (gap <= 0.01 + 1e-12 && (!fastest || c->ms_per_image_batch1 < fastest->ms_per_image_batch1))
      fastest = c;
    if (gap <= 0.02 + 1e-12 && (!smallest || c->parameters < smallest->parameters)) smallest = c;
  }
  r.fastest_near_best = fastest->model;
  r.smallest_near_best = smallest->model;
  if (budget_ms > 0 && int64_t(eligible.size()) < measured)
    r.note = fmt::format("only models within {} ms/image considered", budget_ms);
  return r;
}

nlohmann::json Comparison::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : candidates) {
    nlohmann::json row = {{"model", c.model}};
    if (c.skipped()) {
      row["skipped"] = c.skip_reason;
    } else {
      row.update({{"weights", c.weights},
                  {"parameters", c.parameters},
                  {"size_mib", c.size_mib},
                  {"gflops", c.gmacs},
                  {"input_size", c.input_size},
                  {"feature_dim", c.feature_dim},
                  {"accuracy_mean", c.probe.mean_accuracy},
                  {"accuracy_std", c.probe.std_accuracy},
                  {"fold_accuracy", c.probe.fold_accuracy},
                  {"ms_per_image_batch1", c.ms_per_image_batch1},
                  {"ms_per_image_batch32", c.ms_per_image_batch32},
                  {"features_reused", c.features_reused},
                  {"within_budget", c.within_budget}});
    }
    rows.push_back(row);
  }
  return {{"probe", probe},
          {"device", device},
          {"folds", folds},
          {"images", images},
          {"classes", classes},
          {"models", rows},
          {"recommendation",
           {{"most_accurate", recommendation.most_accurate},
            {"fastest_within_1_point", recommendation.fastest_near_best},
            {"smallest_within_2_points", recommendation.smallest_near_best},
            {"note", recommendation.note}}}};
}

std::string Comparison::table() const {
  std::string text = fmt::format(
      "{:<20} {:>8} {:>8} {:>7} {:>6} {:>18} {:>10} {:>11}\n", "model", "params", "MB", "GFLOPs",
      "width", fmt::format("{} acc ({}-fold)", probe, folds), "ms/img b1", "ms/img b32");
  for (const auto& c : candidates) {
    if (c.skipped()) continue;
    text += fmt::format("{:<20} {:>8} {:>8.1f} {:>7.2f} {:>6} {:>18} {:>10.1f} {:>11.1f}{}\n",
                        c.model, millions(c.parameters), c.size_mib, c.gmacs, c.feature_dim,
                        fmt::format("{:.3f} ± {:.3f}", c.probe.mean_accuracy, c.probe.std_accuracy),
                        c.ms_per_image_batch1, c.ms_per_image_batch32,
                        c.within_budget ? "" : "  (over budget)");
  }
  for (const auto& c : candidates)
    if (c.skipped()) text += fmt::format("skipped {}: {}\n", c.model, c.skip_reason);
  const auto& r = recommendation;
  if (!r.most_accurate.empty()) {
    text += fmt::format(
        "recommendation: most accurate {}; fastest within 1 point of it {}; smallest within 2 "
        "points {}\n",
        r.most_accurate, r.fastest_near_best, r.smallest_near_best);
  }
  if (!r.note.empty()) text += "note: " + r.note + "\n";
  if (!device.empty()) text += "latencies measured on " + device + "\n";
  return text;
}

Comparison compare_backbones(const std::vector<ImageItem>& items,
                             const std::vector<std::string>& classes,
                             const ComparisonOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  VTL_CHECK(!options.models.empty(), "no models to compare");
  VTL_CHECK(classes.size() >= 2, "comparing backbones needs a labelled dataset of 2+ classes");
  VTL_CHECK(options.folds >= 2, "--cv must be 2 or more (got {})", options.folds);
  VTL_CHECK(!options.out.empty(), "no output folder given (--out DIR)");
  for (const auto& model : options.models) models::model_info(model);  // unknown names: error
  const torch::Device device = models::parse_device(options.device);
  std::vector<int64_t> counts(classes.size(), 0);
  for (const auto& item : items) {
    VTL_CHECK(item.label >= 0, "{} is unlabelled: compare needs class folders or a CSV list",
              item.path.string());
    ++counts.at(size_t(item.label));
  }
  for (size_t c = 0; c < classes.size(); ++c)
    VTL_CHECK(counts[c] >= options.folds,
              "class '{}' has {} images, fewer than the {} folds (--cv); add images or lower "
              "--cv",
              classes[c], counts[c], options.folds);

  ClassicalParams params;
  params.algo = parse_classical_algo(options.probe);
  params.seed = options.seed;
  Comparison comparison;
  comparison.probe = options.probe;
  comparison.folds = options.folds;
  comparison.device = device.str();
  comparison.images = int64_t(items.size());
  comparison.classes = classes;
  const size_t n = options.models.size();
  for (size_t m = 0; m < n; ++m) {
    const std::string& model = options.models[m];
    const std::string step = fmt::format("[{}/{}] {}", m + 1, n, model);
    CandidateResult row;
    row.model = model;
    const auto choice = choose_weights(model, options.weights_from);
    if (!choice.skip_reason.empty()) {
      row.skip_reason = choice.skip_reason;
      log(fmt::format("{}: skipped, {}", step, row.skip_reason));
      comparison.candidates.push_back(row);
      continue;
    }
    Backbone backbone;
    try {
      BackboneOptions backbone_options;
      backbone_options.model = model;
      backbone_options.weights = choice.weights;
      backbone_options.seed = options.seed;
      backbone_options.image_size = options.image_size;
      backbone = load_backbone(backbone_options);
    } catch (const Error& e) {
      row.skip_reason = fmt::format("the weights do not load: {}", e.what());
      log(fmt::format("{}: skipped, {}", step, row.skip_reason));
      comparison.candidates.push_back(row);
      continue;
    }
    row.weights = backbone.weights;
    row.input_size = backbone.preprocessing.crop;

    // Size and cost of the model as published, before the extractor folds its BatchNorms;
    // latency below is measured on the model extraction runs.
    const auto stats = models::model_stats(backbone.model, row.input_size);
    FeatureExtractor extractor(backbone, "avg_pool");
    extractor.to(device);
    row.feature_dim = extractor.dim();
    ExtractOptions extract_options;
    extract_options.batch_size = options.batch_size;
    extract_options.classes = classes;
    extract_options.skip_bad = true;
    extract_options.overwrite = true;  // other settings than the cached run: start over
    extract_options.progress = [&](int64_t done, int64_t total) {
      log(fmt::format("{}: features {}/{} images", step, done, total));
    };
    const fs::path features_dir = options.out / "features" / model;
    const auto extracted = extract_features(extractor, items, features_dir, extract_options);
    row.features_reused = extracted.computed_items == 0;
    if (row.features_reused)
      log(fmt::format("{}: features reused from {}", step, features_dir.string()));
    const auto set = load_features(features_dir);
    std::vector<int64_t> labels;
    for (const auto& r : set.rows) labels.push_back(r.label);
    row.probe = cross_validate(set.features, labels, int64_t(classes.size()), params, options.folds,
                               options.seed);
    log(fmt::format("{}: {} {}-fold accuracy {:.3f} ± {:.3f}", step, options.probe, options.folds,
                    row.probe.mean_accuracy, row.probe.std_accuracy));

    row.parameters = stats.parameters;
    row.size_mib = stats.size_mib;
    row.gmacs = stats.gmacs;
    row.ms_per_image_batch1 =
        models::measure_latency_ms(backbone.model, 1, row.input_size, options.latency_repeats, 1);
    row.ms_per_image_batch32 =
        models::measure_latency_ms(backbone.model, 32, row.input_size, options.latency_repeats, 1);
    row.within_budget = options.budget_ms <= 0 || row.ms_per_image_batch1 <= options.budget_ms;
    log(fmt::format("{}: {:.1f} ms/image at batch 1, {:.1f} at batch 32", step,
                    row.ms_per_image_batch1, row.ms_per_image_batch32));
    comparison.candidates.push_back(row);
  }
  comparison.recommendation = recommend(comparison.candidates, options.budget_ms);
  fs::create_directories(options.out);
  write_file_atomically(options.out / "compare.json", comparison.to_json().dump(2) + "\n");
  write_file_atomically(options.out / "compare.html", render_comparison_report(comparison));
  return comparison;
}

}  // namespace vtl::embed

// `vtl models [PATTERN] [--json] [--bench] [--layers NAME]`: the comparison table of the
// registered architectures, measured on the real modules (parameters, weight size, MACs,
// feature width), with the published accuracy of their default pretrained weights.
//
// Counting MACs needs one forward pass per model at its default resolution (~10-60 s for
// the whole table on two cores, efficientnet_b7 at 600 px and vgg19 dominate), so results
// are cached in $VTL_HOME/cache/model_stats.json, keyed by model name, input size and the
// identity (size + modification time) of the running vtl binary: a rebuilt binary
// recomputes. --no-cache ignores and rewrites the cache.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/core/text.h"
#include "vtl/models/registry.h"
#include "vtl/models/stats.h"
#include "vtl/weights/catalogue.h"

namespace vtl::cli {
namespace {

struct Options {
  std::string pattern = "*";
  bool json = false;
  bool bench = false;
  std::string layers;
  int64_t input_size = 0;
  int repeats = 5;
  bool no_cache = false;
};

/// One row of the table.
struct Row {
  models::ModelInfo info;
  models::ModelStats stats;
  const weights::PretrainedWeights* weights = nullptr;  ///< default pretrained entry, if any
  std::optional<double> ms_batch1, ms_batch8;
};

/// "<size>-<mtime>" of the running executable; changes whenever vtl is rebuilt.
std::string binary_identity() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "unknown";
  const auto size = std::filesystem::file_size(exe, ec);
  const auto mtime = std::filesystem::last_write_time(exe, ec);
  if (ec) return "unknown";
  return fmt::format("{}-{}", size, mtime.time_since_epoch().count());
}

/// MAC/size/parameter results persisted between runs (see the file comment).
class StatsCache {
 public:
  explicit StatsCache(bool enabled)
      : enabled_(enabled),
        path_(vtl_home() / "cache" / "model_stats.json"),
        identity_(binary_identity()) {
    if (!enabled_ || identity_ == "unknown" || !std::filesystem::exists(path_)) return;
    try {
      const auto json = nlohmann::json::parse(read_file(path_));
      if (json.value("binary", "") == identity_) entries_ = json.at("entries");
    } catch (const std::exception&) {
      entries_ = nlohmann::json::object();  // unreadable cache: recompute and rewrite
    }
  }

  std::optional<models::ModelStats> find(const std::string& name, int64_t input_size) const {
    const auto it = entries_.find(key(name, input_size));
    if (it == entries_.end()) return std::nullopt;
    models::ModelStats stats;
    stats.name = name;
    stats.input_size = input_size;
    stats.parameters = it->at("parameters").get<int64_t>();
    stats.size_mib = it->at("size_mib").get<double>();
    stats.gmacs = it->at("gmacs").get<double>();
    return stats;
  }

  void store(const models::ModelStats& stats) {
    entries_[key(stats.name, stats.input_size)] = {
        {"parameters", stats.parameters}, {"size_mib", stats.size_mib}, {"gmacs", stats.gmacs}};
    dirty_ = true;
  }

  /// Writes the cache if anything was added; a cache that cannot be written is skipped.
  void save() const {
    if (!dirty_ || identity_ == "unknown") return;
    try {
      std::filesystem::create_directories(path_.parent_path());
      const nlohmann::json json = {{"binary", identity_}, {"entries", entries_}};
      write_file_atomically(path_, json.dump(1) + "\n");
    } catch (const std::exception& e) {
      std::cerr << "vtl: warning: could not write " << path_.string() << ": " << e.what() << "\n";
    }
  }

 private:
  static std::string key(const std::string& name, int64_t input_size) {
    return fmt::format("{}@{}", name, input_size);
  }

  bool enabled_;
  std::filesystem::path path_;
  std::string identity_;
  nlohmann::json entries_ = nlohmann::json::object();
  bool dirty_ = false;
};

/// Progress on stderr, only when it is a terminal (JSON on stdout stays clean either way).
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), enabled_(isatty(STDERR_FILENO) != 0) {}
  void update(size_t done, const std::string& what) {
    if (!enabled_) return;
    std::cerr << fmt::format("\r\033[Kmeasuring {}/{}: {}", done + 1, total_, what) << std::flush;
    shown_ = true;
  }
  ~Progress() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
  }

 private:
  size_t total_;
  bool enabled_;
  bool shown_ = false;
};

const weights::PretrainedWeights* default_weights(const std::string& architecture) {
  const auto entries = weights::weights_for(architecture);
  for (const auto* entry : entries) {
    if (entry->is_default) return entry;
  }
  return entries.empty() ? nullptr : entries.front();
}

std::vector<std::string> matching_models(const std::string& pattern) {
  auto names = models::list_models(pattern);
  if (names.empty()) {
    fail("no model matches '{}'{}; `vtl models` lists all {} models", pattern,
         did_you_mean(pattern, models::list_models("*")), models::list_models("*").size());
  }
  return names;
}

std::vector<Row> measure(const Options& options) {
  const auto names = matching_models(options.pattern);
  StatsCache cache(!options.no_cache);
  Progress progress(names.size());
  std::vector<Row> rows;
  for (size_t i = 0; i < names.size(); ++i) {
    Row row;
    row.info = models::model_info(names[i]);
    row.weights = default_weights(names[i]);
    // The default weights' input (what their acc@1 was measured at), else the
    // architecture's own.
    const int64_t size = options.input_size > 0 ? options.input_size
                         : row.weights          ? row.weights->preprocessing.crop
                                                : row.info.default_input_size;
    auto cached = options.bench ? std::nullopt : cache.find(names[i], size);
    if (cached) {
      row.stats = *cached;
    } else {
      progress.update(i, names[i]);
      auto model = models::create_model(names[i]);
      row.stats = models::model_stats(model, size);
      cache.store(row.stats);
      if (options.bench) {
        row.ms_batch1 = models::measure_latency_ms(model, 1, size, options.repeats, 1);
        row.ms_batch8 = models::measure_latency_ms(model, 8, size, options.repeats, 1);
      }
    }
    rows.push_back(std::move(row));
  }
  cache.save();
  return rows;
}

nlohmann::json to_json(const Row& row) {
  nlohmann::json out = {
      {"name", row.info.name},
      {"family", row.info.family},
      {"parameters", row.stats.parameters},
      {"size_mib", row.stats.size_mib},
      {"gflops", row.stats.gmacs},
      {"num_features", row.info.num_features},
      {"input_size", row.stats.input_size},
      {"default_input_size", row.info.default_input_size},
      {"weights", row.weights ? nlohmann::json(row.weights->name) : nlohmann::json(nullptr)},
      {"top1", row.weights ? nlohmann::json(row.weights->top1) : nlohmann::json(nullptr)},
      {"recommended_use", row.info.recommended_use},
  };
  if (row.ms_batch1) out["ms_per_image_batch1"] = *row.ms_batch1;
  if (row.ms_batch8) out["ms_per_image_batch8"] = *row.ms_batch8;
  return out;
}

void print_table(const std::vector<Row>& rows, bool bench, int repeats) {
  std::string header =
      fmt::format("{:<20} {:>9} {:>9} {:>7} {:>8} {:>5} {:>6}", "model", "params(M)", "size(MiB)",
                  "GFLOPs", "features", "input", "acc@1");
  if (bench) header += fmt::format(" {:>8} {:>8}", "ms/img@1", "ms/img@8");
  std::cout << header << "  use\n";
  for (const auto& row : rows) {
    std::string line = fmt::format("{:<20} {:>9.2f} {:>9.2f} {:>7.2f} {:>8} {:>5} {:>6}",
                                   row.info.name, row.stats.parameters / 1e6, row.stats.size_mib,
                                   row.stats.gmacs, row.info.num_features, row.stats.input_size,
                                   row.weights ? fmt::format("{:.2f}", row.weights->top1) : "-");
    if (bench) line += fmt::format(" {:>8.1f} {:>8.1f}", *row.ms_batch1, *row.ms_batch8);
    std::cout << line << "  " << row.info.recommended_use << "\n";
  }
  std::cout << "\nGFLOPs: multiply-accumulates of the conv and linear layers for one image at "
               "`input` px, / 1e9 (torchvision's convention).\nsize: fp32 state dict. acc@1: "
               "published ImageNet-1k top-1 of the default weights (`vtl weights list`).\n";
  if (bench) {
    std::cout << fmt::format(
        "ms/img@B: median CPU milliseconds per image at batch B over {} passes, {} threads.\n",
        repeats, torch::get_num_threads());
  }
}

void print_layers(const Options& options) {
  auto model = models::create_model(options.layers);
  model->eval();
  const int64_t size =
      options.input_size > 0 ? options.input_size : model->info().default_input_size;
  const auto taps = model->tap_names();
  torch::NoGradGuard no_grad;
  const auto outputs = model->forward_taps(torch::zeros({1, 3, size, size}), taps);
  if (options.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& tap : taps) {
      const auto shape = outputs.at(tap).sizes().vec();
      layers.push_back(
          {{"name", tap}, {"shape", std::vector<int64_t>(shape.begin() + 1, shape.end())}});
    }
    std::cout << nlohmann::json{{"model", model->name()}, {"input_size", size}, {"layers", layers}}
                     .dump(1)
              << "\n";
    return;
  }
  std::cout << fmt::format("{} at {}x{} (shapes per image, without the batch dimension):\n",
                           model->name(), size, size);
  for (const auto& tap : taps) {
    const auto shape = outputs.at(tap).sizes().vec();
    std::cout << fmt::format("  {:<12} [{}]\n", tap,
                             fmt::join(std::vector<int64_t>(shape.begin() + 1, shape.end()), ", "));
  }
}

void run_models(const Options& options) {
  if (!options.layers.empty()) {
    VTL_CHECK(options.pattern == "*" && !options.bench,
              "--layers shows one model; use it without PATTERN and --bench");
    print_layers(options);
    return;
  }
  const auto rows = measure(options);
  if (options.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : rows) out.push_back(to_json(row));
    std::cout << out.dump(1) << "\n";
    return;
  }
  print_table(rows, options.bench, options.repeats);
}

void add_models_command(CLI::App& app) {
  static Options options;
  auto* cmd = app.add_subcommand(
      "models",
      "Compare the architectures: parameters, size, GFLOPs, feature width, input size, "
      "published accuracy");
  cmd->add_option("PATTERN", options.pattern,
                  "Shell-style pattern of model names, e.g. 'resnet*' (default: all)");
  cmd->add_flag("--json", options.json, "Print the rows (or --layers) as JSON");
  cmd->add_flag("--bench", options.bench,
                "Also measure CPU milliseconds per image at batch 1 and 8 (slow for big "
                "models)");
  cmd->add_option("--layers", options.layers,
                  "List the feature taps of model NAME (usable with `vtl extract --layer`) and "
                  "their output shapes")
      ->type_name("NAME");
  cmd->add_option("--input-size", options.input_size,
                  "Square input side in pixels for GFLOPs, --bench and --layers (default: the "
                  "input of each model's default weights, else the architecture's)")
      ->check(CLI::Range(32, 2048));
  cmd->add_option("--repeats", options.repeats, "Timed passes per batch size for --bench")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--no-cache", options.no_cache,
                "Recompute GFLOPs instead of reading $VTL_HOME/cache/model_stats.json");
  cmd->callback([] { run_models(options); });
}

}  // namespace

VTL_COMMAND(10, add_models_command);

}  // namespace vtl::cli

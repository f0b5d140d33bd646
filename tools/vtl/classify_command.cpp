// vtl classify fit FEATURES_DIR --algo svm|svm-rbf|rf|knn|logreg [--cv 5] --out DIR
//                  [--overwrite]
// vtl classify predict CLASSIFIER_DIR FEATURES_DIR|IMAGE|FOLDER... [--device cpu|cuda[:N]]
//                      [--weights MOVED_PATH] [--json] [--csv FILE]
// vtl classify evaluate CLASSIFIER_DIR FEATURES_DIR [--json]
// vtl classify compare FEATURES_DIR --run RUN_DIR [--algos svm,rf,...] [--json]

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "prediction_csv.h"
#include "vtl/core/error.h"
#include "vtl/core/stop_signals.h"
#include "vtl/core/text.h"
#include "vtl/data/image.h"
#include "vtl/embed/classical.h"
#include "vtl/embed/extract.h"
#include "vtl/embed/extractor.h"
#include "vtl/models/device.h"
#include "vtl/train/run.h"

namespace vtl::cli {
namespace {

struct ClassifyArgs {
  std::string features;
  std::vector<std::string> inputs;  ///< predict: a features folder, or images and folders
  std::string device = "cpu";
  int64_t batch = 32;
  std::string classifier;
  std::string moved_weights;  ///< predict --weights: where the features' weights are now
  bool overwrite = false;     ///< fit: replace a classifier in --out
  std::string out;
  std::string algo = "svm";
  std::string run;  ///< compare: a `vtl train` run folder
  std::string algos = "svm,svm-rbf,rf,knn,logreg";
  int cv = 0;
  uint64_t seed = 0;
  embed::ClassicalParams params;
  bool json = false;
  PredictionCsvOptions csv;  // predict --csv
};

std::vector<int64_t> labels_of(const embed::FeatureSet& set) {
  std::vector<int64_t> labels;
  for (const auto& row : set.rows) labels.push_back(row.label);
  return labels;
}

void print_confusion(const embed::Evaluation& e, const std::vector<std::string>& classes) {
  size_t width = 9;
  for (const auto& name : classes) width = std::max(width, name.size());
  fmt::print("{:<{}}", "true\\pred", width);
  for (const auto& name : classes) fmt::print(" {:>{}}", name, std::max<size_t>(name.size(), 4));
  fmt::print("\n");
  for (size_t t = 0; t < e.confusion.size(); ++t) {
    fmt::print("{:<{}}", t < classes.size() ? classes[t] : std::to_string(t), width);
    for (size_t p = 0; p < e.confusion[t].size(); ++p)
      fmt::print(" {:>{}}", e.confusion[t][p],
                 std::max<size_t>(p < classes.size() ? classes[p].size() : 1, 4));
    fmt::print("\n");
  }
}

/// A classifier folder: the model, its classifier.json, its class names and the spec of
/// the features it was trained on.
struct OpenedClassifier {
  embed::ClassicalClassifier classifier;
  nlohmann::json description;
  std::vector<std::string> classes;
  embed::FeatureSpec trained_on;
};

OpenedClassifier open_classifier(const std::string& dir) {
  OpenedClassifier opened;
  opened.classifier = embed::ClassicalClassifier::load(dir, &opened.description);
  opened.classes = opened.description.at("classes").get<std::vector<std::string>>();
  opened.trained_on = embed::feature_spec_from_json(
      opened.description.at("spec"), (std::filesystem::path(dir) / "classifier.json").string());
  return opened;
}

/// Opens a classifier folder and the features to apply it to; refuses features made by
/// another extractor than the one the classifier was trained on.
OpenedClassifier open_classifier(const ClassifyArgs& args, const embed::FeatureSet& set) {
  auto opened = open_classifier(args.classifier);
  const auto mismatch = embed::spec_mismatch(opened.trained_on, set.spec);
  VTL_CHECK(mismatch.empty(),
            "the classifier {} was trained on other features than {} ({}); extract them as "
            "the classifier's training features were (its classifier.json: spec), or, when "
            "the weights changed, extract both again and fit again",
            args.classifier, args.features, mismatch);
  return opened;
}

/// Refuses an --out that would lose something: a classifier (unless `overwrite`), or a
/// folder that holds anything else (a features folder, a model folder).
void check_fit_out(const std::filesystem::path& out, bool overwrite) {
  std::error_code ec;
  if (!std::filesystem::exists(out, ec)) return;
  VTL_CHECK(std::filesystem::is_directory(out, ec), "--out {}: a file, not a folder", out.string());
  // A classifier folder holds classifier.* files only (a fit stopped while writing may
  // have left classifier.yml or a temporary one without classifier.json).
  bool classifier_files_only = true, empty = true;
  for (std::filesystem::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    empty = false;
    classifier_files_only &= it->path().filename().string().rfind("classifier.", 0) == 0;
  }
  VTL_CHECK(!ec, "--out {}: cannot read the folder: {}", out.string(), ec.message());
  VTL_CHECK(empty || classifier_files_only,
            "--out {}: the folder holds other files; give a new or empty folder", out.string());
  VTL_CHECK(empty || overwrite, "{} already holds a classifier; pass --overwrite to replace it",
            out.string());
}

void run_fit(ClassifyArgs args) {
  const auto start = std::chrono::steady_clock::now();
  check_fit_out(args.out, args.overwrite);
  const auto set = embed::load_features(args.features);
  const auto labels = labels_of(set);
  VTL_CHECK(!set.classes.empty(), "{} has no class names: extract a labelled dataset",
            args.features);
  const int64_t num_classes = static_cast<int64_t>(set.classes.size());
  args.params.algo = embed::parse_classical_algo(args.algo);
  args.params.seed = args.seed;
  nlohmann::json extra = {{"classes", set.classes},
                          {"spec", embed::to_json(set.spec)},
                          {"features", args.features},
                          {"train_rows", set.features.size(0)}};
  if (args.cv > 0) {
    const auto cv =
        embed::cross_validate(set.features, labels, num_classes, args.params, args.cv, args.seed);
    extra["cross_validation"] = cv.to_json();
    if (!args.json) {
      fmt::print("{}-fold cross-validation ({}): accuracy {:.4f} +- {:.4f} (folds: {:.4f})\n",
                 args.cv, args.algo, cv.mean_accuracy, cv.std_accuracy,
                 fmt::join(cv.fold_accuracy, ", "));
    }
  }
  auto classifier = embed::ClassicalClassifier::fit(set.features, labels, num_classes, args.params);
  if (!classifier.warning().empty()) std::cerr << "warning: " << classifier.warning() << "\n";
  const auto train =
      embed::evaluate_predictions(classifier.predict(set.features), labels, num_classes);
  extra["train_accuracy"] = train.accuracy;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  extra["seconds"] = seconds;
  VTL_CHECK(!args.out.empty(), "missing --out CLASSIFIER_DIR");
  classifier.save(args.out, extra);
  if (args.json) {
    std::cout << extra.dump() << "\n";
  } else {
    fmt::print("{}: {} on {} rows x {} ({} classes), training accuracy {:.4f}, {:.1f} s\n",
               args.out, args.algo, set.features.size(0), set.features.size(1), num_classes,
               train.accuracy, seconds);
  }
}

/// Class name of a predicted label ("3" when the classifier has fewer names).
std::string class_name(const std::vector<std::string>& classes, int64_t label) {
  return label >= 0 && label < static_cast<int64_t>(classes.size()) ? classes[size_t(label)]
                                                                    : std::to_string(label);
}

/// New images: embedded as the classifier's training features were (the model, weights,
/// layer and precision its classifier.json records), then classified.
void predict_images(const ClassifyArgs& args) {
  // Named members, not structured bindings: the lambdas below capture them.
  const OpenedClassifier opened = open_classifier(args.classifier);
  const auto& classifier = opened.classifier;
  const auto& classes = opened.classes;
  const auto& trained_on = opened.trained_on;
  const torch::Device device = models::parse_device(args.device);
  auto images = expand_image_arguments("vtl classify predict", args.inputs);
  PredictionCsv csv(args.csv, classes, /*with_probabilities=*/false);
  csv.check_stdout_is_free(args.json);
  if (csv.follows_sample()) images = csv.sample_images();
  VTL_CHECK(!images.empty(), "no images to classify");
  auto extractor = embed::extractor_for_spec(trained_on, args.moved_weights);
  extractor.to(device);
  // Ctrl-C with --csv: stop before the next batch and leave no partial file.
  std::optional<StopSignals> signals;
  if (csv.enabled()) signals.emplace("stopping after this batch; the CSV is not written");
  nlohmann::json out = nlohmann::json::array();
  data::BatchReader reader(images, size_t(std::max<int64_t>(args.batch, 1)),
                           [&](const std::filesystem::path& path) { return extractor.load(path); });
  const size_t unreadable = answer_each_image(
      reader, images,
      [&](const data::ImageBatch& batch) {
        return classifier.predict(extractor.embed(batch.stacked()));
      },
      [&](const std::string& path, int64_t label) {
        csv.add_label(path, class_name(classes, label));
        if (args.json) {
          out.push_back({{"path", path}, {"label", label}, {"class", class_name(classes, label)}});
        } else if (!csv.on_stdout()) {
          fmt::print("{}\t{}\n", path, class_name(classes, label));
          std::fflush(stdout);
        }
      },
      [&](const std::string& path, const std::string& error) {
        if (args.json) out.push_back({{"path", path}, {"error", error}});
      });
  if (args.json) std::cout << json_text(out) << "\n";
  csv.write();
  VTL_CHECK(unreadable == 0, "{} of {} images could not be read", unreadable, images.size());
}

void run_predict(ClassifyArgs args) {
  VTL_CHECK(args.csv.like.empty() || args.inputs.empty(),
            "--csv-like lists the images to classify: leave out the inputs");
  VTL_CHECK(!args.csv.like.empty() || !args.inputs.empty(),
            "no inputs: give a features folder, images or folders (or --csv FILE --csv-like "
            "SAMPLE)");
  const bool features_folder =
      args.inputs.size() == 1 &&
      std::filesystem::exists(std::filesystem::path(args.inputs[0]) / "features.json");
  if (!features_folder) {
    predict_images(args);
    return;
  }
  VTL_CHECK(args.moved_weights.empty(),
            "--weights is for images, which are embedded first; {} holds features already",
            args.inputs[0]);
  args.features = args.inputs[0];
  const auto set = embed::load_features(args.features);
  const auto [classifier, description, classes, trained_on] = open_classifier(args, set);
  const auto predicted = classifier.predict(set.features);
  PredictionCsv csv(args.csv, classes, /*with_probabilities=*/false);
  csv.check_stdout_is_free(args.json);
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < predicted.size(); ++i) {
    const std::string name = class_name(classes, predicted[i]);
    csv.add_label(set.rows[i].path.string(), name);
    if (args.json) {
      out.push_back(
          {{"path", set.rows[i].path.string()}, {"label", predicted[i]}, {"class", name}});
    } else if (!csv.on_stdout()) {
      fmt::print("{}\t{}\n", set.rows[i].path.string(), name);
    }
  }
  if (args.json) std::cout << json_text(out) << "\n";
  csv.write();
}

void run_evaluate(const ClassifyArgs& args) {
  const auto set = embed::load_features(args.features);
  const auto [classifier, description, classes, trained_on] = open_classifier(args, set);
  for (const auto& row : set.rows)
    VTL_CHECK(row.label >= 0, "{}: {} is unlabelled; evaluate needs labelled features",
              args.features, row.path.string());
  // The features' classes may be some of the classifier's (a test set without one class):
  // their labels are renumbered to the classifier's ids.
  std::vector<int64_t> classifier_id(set.classes.size());
  for (size_t i = 0; i < set.classes.size(); ++i) {
    const auto known = std::find(classes.begin(), classes.end(), set.classes[i]);
    VTL_CHECK(known != classes.end(),
              "{} has the class '{}', which the classifier does not know (it knows [{}])",
              args.features, set.classes[i], fmt::join(classes, ", "));
    classifier_id[i] = known - classes.begin();
  }
  std::vector<int64_t> labels = labels_of(set);
  if (!set.classes.empty()) {
    for (size_t row = 0; row < labels.size(); ++row) {
      VTL_CHECK(labels[row] < int64_t(classifier_id.size()),
                "{}: row {} has label {}, but the features name {} classes", args.features, row,
                labels[row], classifier_id.size());
      labels[row] = classifier_id[size_t(labels[row])];
    }
  }
  const auto evaluation = embed::evaluate_predictions(classifier.predict(set.features), labels,
                                                      static_cast<int64_t>(classes.size()));
  if (args.json) {
    auto out = evaluation.to_json(classes);
    out["algo"] = description.value("algo", "");
    out["rows"] = set.features.size(0);
    std::cout << out.dump() << "\n";
    return;
  }
  fmt::print("{} on {}: accuracy {:.4f} ({} rows)\n", description.value("algo", ""), args.features,
             evaluation.accuracy, set.features.size(0));
  print_confusion(evaluation, classes);
}

/// Rows of `set` on each side of a training run's split, matched by absolute path.
struct SplitRows {
  std::vector<int64_t> train, val;
  std::vector<int64_t> train_labels, val_labels;
  int64_t missing = 0;  ///< split images with no feature row
};

SplitRows rows_of_split(const embed::FeatureSet& set, const std::vector<train::SplitEntry>& split,
                        const std::string& run) {
  std::map<std::string, int64_t> row_of;
  for (size_t i = 0; i < set.rows.size(); ++i)
    row_of[set.rows[i].path.lexically_normal().string()] = static_cast<int64_t>(i);
  std::map<std::string, int64_t> class_id;
  for (size_t c = 0; c < set.classes.size(); ++c) class_id[set.classes[c]] = int64_t(c);
  SplitRows rows;
  for (const auto& entry : split) {
    auto row = row_of.find(entry.path.lexically_normal().string());
    if (row == row_of.end()) {
      ++rows.missing;
      continue;
    }
    auto label = class_id.find(entry.class_name);
    VTL_CHECK(label != class_id.end(), "{}: class '{}' of run {} is not among the features' [{}]",
              entry.path.string(), entry.class_name, run, fmt::join(set.classes, ", "));
    (entry.validation ? rows.val : rows.train).push_back(row->second);
    (entry.validation ? rows.val_labels : rows.train_labels).push_back(label->second);
  }
  return rows;
}

torch::Tensor select_rows(const torch::Tensor& features, const std::vector<int64_t>& rows) {
  return features.index_select(0, torch::tensor(rows, torch::kLong)).contiguous();
}

/// Side-by-side validation accuracy of classical classifiers and the neural head of a
/// `vtl train` run, on that run's train/validation split.
void run_compare(const ClassifyArgs& args) {
  const auto set = embed::load_features(args.features);
  VTL_CHECK(!set.classes.empty(), "{} has no class names: extract a labelled dataset",
            args.features);
  const auto split = train::read_split(args.run);
  VTL_CHECK(std::any_of(split.begin(), split.end(), [](const auto& e) { return e.validation; }),
            "run {} trained without validation images (--val-split 0): there is no validation "
            "split to compare on",
            args.run);
  const auto rows = rows_of_split(set, split, args.run);
  VTL_CHECK(!rows.train.empty() && !rows.val.empty(),
            "{} and run {} share no images ({} of the run's images have no feature row); "
            "extract the run's training data: vtl extract DATA --model ... --out {}",
            args.features, args.run, rows.missing, args.features);
  const int64_t num_classes = static_cast<int64_t>(set.classes.size());
  const auto train_x = select_rows(set.features, rows.train);
  const auto val_x = select_rows(set.features, rows.val);

  nlohmann::json table = nlohmann::json::array();
  const auto evaluation_path = std::filesystem::path(args.run) / "evaluation.json";
  std::ifstream evaluation_file(evaluation_path);
  if (evaluation_file) {
    const auto evaluation = nlohmann::json::parse(evaluation_file);
    std::string strategy = "?";
    std::ifstream run_file(std::filesystem::path(args.run) / "run.json");
    if (run_file) {
      const auto run_json = nlohmann::json::parse(run_file);
      strategy = run_json.at("config").value("strategy", "?");
    }
    table.push_back({{"classifier", fmt::format("neural head (vtl train, {})", strategy)},
                     {"val_accuracy", evaluation.at("top1").get<double>()},
                     {"val_images", evaluation.at("count").get<int64_t>()},
                     {"fit_seconds", nullptr}});
  }
  for (const auto& name : split_list(args.algos)) {
    auto params = args.params;
    params.algo = embed::parse_classical_algo(name);
    params.seed = args.seed;
    const auto start = std::chrono::steady_clock::now();
    auto classifier =
        embed::ClassicalClassifier::fit(train_x, rows.train_labels, num_classes, params);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto evaluation =
        embed::evaluate_predictions(classifier.predict(val_x), rows.val_labels, num_classes);
    table.push_back({{"classifier", name},
                     {"val_accuracy", evaluation.accuracy},
                     {"val_images", static_cast<int64_t>(rows.val.size())},
                     {"fit_seconds", seconds}});
  }

  if (args.json) {
    std::cout << nlohmann::json{{"features", args.features},
                                {"run", args.run},
                                {"spec", embed::to_json(set.spec)},
                                {"train_rows", rows.train.size()},
                                {"val_rows", rows.val.size()},
                                {"missing", rows.missing},
                                {"table", table}}
                     .dump()
              << "\n";
    return;
  }
  fmt::print("split of run {}: {} train / {} validation images; features {} ({} {}, {} values)\n",
             args.run, rows.train.size(), rows.val.size(), args.features, set.spec.model,
             set.spec.layer, set.spec.dim);
  if (rows.missing > 0)
    fmt::print("note: {} of the run's images have no feature row and are left out\n", rows.missing);
  fmt::print("{:<36} {:>12} {:>8}\n", "classifier", "val accuracy", "fit s");
  for (const auto& row : table) {
    fmt::print("{:<36} {:>12.4f} {:>8}\n", row.at("classifier").get<std::string>(),
               row.at("val_accuracy").get<double>(),
               row.at("fit_seconds").is_null()
                   ? std::string("-")
                   : fmt::format("{:.2f}", row.at("fit_seconds").get<double>()));
  }
}

void add_classify_command(CLI::App& app) {
  auto args = std::make_shared<ClassifyArgs>();
  auto* cmd = app.add_subcommand(
      "classify",
      "Classical classifiers (SVM, random forest, kNN, logistic regression) on features");
  cmd->require_subcommand(1);

  auto* fit = cmd->add_subcommand("fit", "Train a classifier on a features folder (vtl extract)");
  fit->add_option("features", args->features, "Features folder")->required();
  fit->add_option("--algo", args->algo, "svm (linear, default), svm-rbf, rf, knn, logreg")
      ->check(CLI::IsMember({"svm", "svm-rbf", "rf", "knn", "logreg"}));
  fit->add_option("--cv", args->cv, "k-fold cross-validation report before the final fit")
      ->check(CLI::NonNegativeNumber);
  fit->add_flag("--overwrite", args->overwrite, "Replace the classifier already in --out");
  fit->add_option("--seed", args->seed, "Seed of the folds and the forest (default 0)");
  fit->add_option("--out", args->out, "Classifier folder to write")->required();
  fit->add_option("--c", args->params.c,
                  "SVM C, or logistic regression's inverse L2 penalty as scikit-learn's C "
                  "(default 1)");
  fit->add_option("--gamma", args->params.gamma, "RBF SVM gamma (default 1/dim)");
  fit->add_option("--trees", args->params.trees, "Random forest trees (default 100)");
  fit->add_option("--max-depth", args->params.max_depth, "Random forest depth (default 25)");
  fit->add_option("-k", args->params.k, "kNN neighbours (default 5)");
  fit->add_option("--iterations", args->params.iterations,
                  "Logistic regression: L-BFGS iterations at most (500)");
  fit->add_flag("--json", args->json, "Print the report as JSON");
  fit->callback([args] { run_fit(*args); });

  auto* predict = cmd->add_subcommand(
      "predict",
      "Predict the class of each row of a features folder, or of new images (embedded as the "
      "classifier's training features were)");
  predict->add_option("classifier", args->classifier, "Classifier folder")->required();
  predict->add_option("inputs", args->inputs,
                      "A features folder (vtl extract), or images, folders and CSV lists of "
                      "images");
  predict->add_option("--device", args->device,
                      "Images: where they are embedded, cpu (default), cuda or cuda:N");
  predict->add_option("--batch-size,--batch", args->batch, "Images: per forward pass (default 32)");
  predict->add_option("--weights", args->moved_weights,
                      "Images: where the weights file or trained model folder that made the "
                      "training features is now, if it moved (the same bytes)");
  add_max_image_pixels_option(predict);
  predict->add_flag("--json", args->json, "Print predictions as JSON");
  add_prediction_csv_options(predict, args->csv, /*with_probabilities=*/false);
  predict->callback([args] { run_predict(*args); });

  auto* evaluate =
      cmd->add_subcommand("evaluate", "Accuracy and confusion matrix on labelled features");
  evaluate->add_option("classifier", args->classifier, "Classifier folder")->required();
  evaluate->add_option("features", args->features, "Features folder")->required();
  evaluate->add_flag("--json", args->json, "Print the report as JSON");
  evaluate->callback([args] { run_evaluate(*args); });

  auto* compare = cmd->add_subcommand(
      "compare",
      "Validation accuracy of each classifier next to a `vtl train` run's neural head, on that "
      "run's split");
  compare->add_option("features", args->features, "Features folder of the run's data")->required();
  compare->add_option("--run", args->run, "Run folder written by vtl train")->required();
  compare->add_option("--algos", args->algos,
                      "Comma-separated classifiers (default svm,svm-rbf,rf,knn,logreg)");
  compare->add_option("--seed", args->seed, "Seed of the forest (default 0)");
  compare->add_flag("--json", args->json, "Print the table as JSON");
  compare->callback([args] { run_compare(*args); });
}

}  // namespace

VTL_COMMAND(42, add_classify_command);

}  // namespace vtl::cli

// vtl classify fit FEATURES_DIR --algo svm|svm-rbf|rf|knn|logreg [--cv 5] --out DIR
// vtl classify predict CLASSIFIER_DIR FEATURES_DIR [--json]
// vtl classify evaluate CLASSIFIER_DIR FEATURES_DIR [--json]

#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/embed/classical.h"
#include "vtl/embed/extract.h"

namespace vtl::cli {
namespace {

struct ClassifyArgs {
  std::string features;
  std::string classifier;
  std::string out;
  std::string algo = "svm";
  int cv = 0;
  uint64_t seed = 0;
  embed::ClassicalParams params;
  bool json = false;
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

/// Opens a classifier folder and the features to apply it to; refuses features made by
/// another extractor than the one the classifier was trained on.
std::pair<embed::ClassicalClassifier, nlohmann::json> open_classifier(
    const ClassifyArgs& args, const embed::FeatureSet& set) {
  nlohmann::json description;
  auto classifier = embed::ClassicalClassifier::load(args.classifier, &description);
  const auto trained_on = embed::feature_spec_from_json(
      description.at("spec"),
      (std::filesystem::path(args.classifier) / "classifier.json").string());
  const auto mismatch = embed::spec_mismatch(trained_on, set.spec);
  VTL_CHECK(mismatch.empty(),
            "the classifier {} was trained on other features than {} ({}); extract them with "
            "the same model, weights and layer",
            args.classifier, args.features, mismatch);
  return {std::move(classifier), std::move(description)};
}

void run_fit(ClassifyArgs args) {
  const auto start = std::chrono::steady_clock::now();
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

void run_predict(const ClassifyArgs& args) {
  const auto set = embed::load_features(args.features);
  auto [classifier, description] = open_classifier(args, set);
  const auto classes = description.at("classes").get<std::vector<std::string>>();
  const auto predicted = classifier.predict(set.features);
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < predicted.size(); ++i) {
    const std::string name =
        predicted[i] >= 0 && predicted[i] < static_cast<int64_t>(classes.size())
            ? classes[predicted[i]]
            : std::to_string(predicted[i]);
    if (args.json) {
      out.push_back(
          {{"path", set.rows[i].path.string()}, {"label", predicted[i]}, {"class", name}});
    } else {
      fmt::print("{}\t{}\n", set.rows[i].path.string(), name);
    }
  }
  if (args.json) std::cout << out.dump() << "\n";
}

void run_evaluate(const ClassifyArgs& args) {
  const auto set = embed::load_features(args.features);
  auto [classifier, description] = open_classifier(args, set);
  const auto classes = description.at("classes").get<std::vector<std::string>>();
  VTL_CHECK(set.classes.empty() || set.classes == classes,
            "{} has classes [{}] but the classifier knows [{}]", args.features,
            fmt::join(set.classes, ", "), fmt::join(classes, ", "));
  const auto evaluation = embed::evaluate_predictions(
      classifier.predict(set.features), labels_of(set), static_cast<int64_t>(classes.size()));
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
  fit->add_option("--cv", args->cv, "k-fold cross-validation report before the final fit");
  fit->add_option("--seed", args->seed, "Seed of the folds and the forest (default 0)");
  fit->add_option("--out", args->out, "Classifier folder to write")->required();
  fit->add_option("--c", args->params.c, "SVM C (default 1)");
  fit->add_option("--gamma", args->params.gamma, "RBF SVM gamma (default 1/dim)");
  fit->add_option("--trees", args->params.trees, "Random forest trees (default 100)");
  fit->add_option("--max-depth", args->params.max_depth, "Random forest depth (default 25)");
  fit->add_option("-k", args->params.k, "kNN neighbours (default 5)");
  fit->add_option("--iterations", args->params.iterations, "Logistic regression steps (500)");
  fit->add_option("--learning-rate", args->params.learning_rate,
                  "Logistic regression step size (0.1)");
  fit->add_flag("--json", args->json, "Print the report as JSON");
  fit->callback([args] { run_fit(*args); });

  auto* predict = cmd->add_subcommand("predict", "Predict the class of each feature row");
  predict->add_option("classifier", args->classifier, "Classifier folder")->required();
  predict->add_option("features", args->features, "Features folder")->required();
  predict->add_flag("--json", args->json, "Print predictions as JSON");
  predict->callback([args] { run_predict(*args); });

  auto* evaluate =
      cmd->add_subcommand("evaluate", "Accuracy and confusion matrix on labelled features");
  evaluate->add_option("classifier", args->classifier, "Classifier folder")->required();
  evaluate->add_option("features", args->features, "Features folder")->required();
  evaluate->add_flag("--json", args->json, "Print the report as JSON");
  evaluate->callback([args] { run_evaluate(*args); });
}

}  // namespace

VTL_COMMAND(42, add_classify_command);

}  // namespace vtl::cli

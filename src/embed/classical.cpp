#include "vtl/embed/classical.h"

#include <unistd.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <fmt/ranges.h>
#include <opencv2/ml.hpp>

#include "core/json_document.h"
#include "embed/softmax_regression.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::embed {
namespace fs = std::filesystem;
using nlohmann::json;

std::string to_string(ClassicalAlgo algo) {
  switch (algo) {
    case ClassicalAlgo::svm_linear:
      return "svm";
    case ClassicalAlgo::svm_rbf:
      return "svm-rbf";
    case ClassicalAlgo::random_forest:
      return "rf";
    case ClassicalAlgo::knn:
      return "knn";
    case ClassicalAlgo::logreg:
      return "logreg";
  }
  return "svm";
}

ClassicalAlgo parse_classical_algo(const std::string& text) {
  for (auto algo : {ClassicalAlgo::svm_linear, ClassicalAlgo::svm_rbf, ClassicalAlgo::random_forest,
                    ClassicalAlgo::knn, ClassicalAlgo::logreg}) {
    if (text == to_string(algo)) return algo;
  }
  fail("unknown classifier '{}': expected svm, svm-rbf, rf, knn or logreg", text);
}

json to_json(const ClassicalParams& p) {
  return {{"algo", to_string(p.algo)}, {"c", p.c}, {"gamma", p.gamma},           {"trees", p.trees},
          {"max_depth", p.max_depth},  {"k", p.k}, {"iterations", p.iterations}, {"seed", p.seed}};
}

ClassicalParams classical_params_from_json(const json& j) {
  ClassicalParams p;
  try {
    p.algo = parse_classical_algo(j.at("algo").get<std::string>());
    p.c = j.value("c", p.c);
    p.gamma = j.value("gamma", p.gamma);
    p.trees = j.value("trees", p.trees);
    p.max_depth = j.value("max_depth", p.max_depth);
    p.k = j.value("k", p.k);
    p.iterations = j.value("iterations", p.iterations);
    p.seed = j.value("seed", p.seed);
  } catch (const json::exception& e) {
    fail("malformed classifier parameters: {}", e.what());
  }
  return p;
}

namespace {

cv::Ptr<cv::ml::StatModel> make_model(const ClassicalParams& p, int64_t dim, int64_t num_classes) {
  switch (p.algo) {
    case ClassicalAlgo::svm_linear:
    case ClassicalAlgo::svm_rbf: {
      auto svm = cv::ml::SVM::create();
      svm->setType(cv::ml::SVM::C_SVC);
      svm->setC(p.c);
      if (p.algo == ClassicalAlgo::svm_rbf) {
        svm->setKernel(cv::ml::SVM::RBF);
        svm->setGamma(p.gamma > 0 ? p.gamma : 1.0 / static_cast<double>(dim));
      } else {
        svm->setKernel(cv::ml::SVM::LINEAR);
      }
      svm->setTermCriteria(
          cv::TermCriteria(cv::TermCriteria::MAX_ITER + cv::TermCriteria::EPS, 100000, 1e-6));
      return svm;
    }
    case ClassicalAlgo::random_forest: {
      auto forest = cv::ml::RTrees::create();
      forest->setMaxDepth(p.max_depth);
      forest->setMinSampleCount(1);
      forest->setActiveVarCount(0);  // sqrt(dim)
      forest->setTermCriteria(cv::TermCriteria(cv::TermCriteria::MAX_ITER, p.trees, 0));
      return forest;
    }
    case ClassicalAlgo::knn: {
      auto knn = cv::ml::KNearest::create();
      knn->setDefaultK(p.k);
      knn->setIsClassifier(true);
      return knn;
    }
    case ClassicalAlgo::logreg:
      return cv::makePtr<SoftmaxRegression>(p.c, p.iterations, num_classes);
  }
  fail("unknown classifier");
}

cv::Mat to_mat(const torch::Tensor& x) {
  auto contiguous = x.to(torch::kFloat32).contiguous();
  return cv::Mat(static_cast<int>(contiguous.size(0)), static_cast<int>(contiguous.size(1)), CV_32F,
                 contiguous.data_ptr<float>())
      .clone();
}

std::vector<float> tensor_values(const torch::Tensor& x) {
  auto c = x.to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

cv::Mat ClassicalClassifier::standardize(const torch::Tensor& features) const {
  VTL_CHECK(features.dim() == 2 && features.size(1) == mean_.size(0),
            "the classifier expects features of shape [N, {}], got [{}]", mean_.size(0),
            fmt::format("{}", fmt::join(features.sizes(), ", ")));
  return to_mat((features.to(torch::kFloat32) - mean_) / std_);
}

namespace {

/// Throws vtl::Error naming the parameter (and its `vtl classify fit` option) that is out
/// of range for training on `rows` rows.
void check_params(const ClassicalParams& p, int64_t rows) {
  VTL_CHECK(p.c > 0, "C (--c) must be positive, got {}", p.c);
  VTL_CHECK(p.gamma >= 0, "RBF gamma (--gamma) must be positive, or 0 for 1/width; got {}",
            p.gamma);
  VTL_CHECK(p.trees >= 1, "the forest needs at least 1 tree (--trees), got {}", p.trees);
  VTL_CHECK(p.max_depth >= 1, "tree depth (--max-depth) must be at least 1, got {}", p.max_depth);
  VTL_CHECK(p.algo != ClassicalAlgo::knn || (p.k >= 1 && p.k <= rows),
            "kNN's k (-k) must be between 1 and the {} rows it is fitted on (a fold's, with "
            "cross-validation), got {}",
            rows, p.k);
  VTL_CHECK(p.iterations >= 1,
            "logistic regression needs at least 1 iteration (--iterations), got {}", p.iterations);
}

}  // namespace

ClassicalClassifier ClassicalClassifier::fit(const torch::Tensor& features,
                                             const std::vector<int64_t>& labels,
                                             int64_t num_classes, const ClassicalParams& params) {
  VTL_CHECK(features.dim() == 2 && features.size(0) == static_cast<int64_t>(labels.size()),
            "features ({} rows) and labels ({}) disagree", features.size(0), labels.size());
  std::vector<int64_t> counts(std::max<int64_t>(num_classes, 0), 0);
  for (auto label : labels) {
    VTL_CHECK(label >= 0 && label < num_classes,
              "every row needs a label in [0, {}) to train a classifier (got {})", num_classes,
              label);
    ++counts[label];
  }
  VTL_CHECK(std::count_if(counts.begin(), counts.end(), [](int64_t c) { return c > 0; }) >= 2,
            "a classifier needs examples of at least two classes");
  check_params(params, features.size(0));
  ClassicalClassifier classifier;
  classifier.params_ = params;
  classifier.num_classes_ = num_classes;
  auto x = features.to(torch::kFloat32);
  // Standardised as scikit-learn's StandardScaler: each column by its own deviation,
  // however small its values (a random base's features can be 1e-9), and by 1 where the
  // column is constant up to rounding.
  const torch::Tensor x64 = x.to(torch::kFloat64);
  const torch::Tensor mean = x64.mean(0), variance = x64.var(0, /*unbiased=*/false);
  const double n = static_cast<double>(x.size(0)), eps = std::numeric_limits<double>::epsilon();
  const torch::Tensor constant = variance <= n * eps * variance + (n * eps * mean).pow(2);
  classifier.mean_ = mean.to(torch::kFloat32);
  classifier.std_ =
      torch::where(constant, torch::ones_like(variance), variance.sqrt()).to(torch::kFloat32);
  cv::Mat samples = classifier.standardize(x);
  cv::Mat responses;
  if (params.algo == ClassicalAlgo::logreg || params.algo == ClassicalAlgo::random_forest ||
      params.algo == ClassicalAlgo::knn) {
    responses = cv::Mat(static_cast<int>(labels.size()), 1, CV_32F);
    for (size_t i = 0; i < labels.size(); ++i)
      responses.at<float>(static_cast<int>(i)) = static_cast<float>(labels[i]);
  } else {
    responses = cv::Mat(static_cast<int>(labels.size()), 1, CV_32S);
    for (size_t i = 0; i < labels.size(); ++i)
      responses.at<int>(static_cast<int>(i)) = static_cast<int>(labels[i]);
  }
  cv::theRNG().state = params.seed + 0x9E3779B97F4A7C15ULL;
  auto model = make_model(params, x.size(1), num_classes);
  cv::Ptr<cv::ml::TrainData> data =
      cv::ml::TrainData::create(samples, cv::ml::ROW_SAMPLE, responses);
  if (params.algo == ClassicalAlgo::random_forest) {
    // Categorical responses: classification trees, not regression.
    cv::Mat var_type(1, samples.cols + 1, CV_8U, cv::Scalar(cv::ml::VAR_ORDERED));
    var_type.at<uint8_t>(samples.cols) = cv::ml::VAR_CATEGORICAL;
    data = cv::ml::TrainData::create(samples, cv::ml::ROW_SAMPLE, responses, cv::noArray(),
                                     cv::noArray(), cv::noArray(), var_type);
  }
  try {
    VTL_CHECK(model->train(data), "training the {} classifier failed", to_string(params.algo));
  } catch (const cv::Exception& e) {
    fail("training the {} classifier failed: {}", to_string(params.algo), e.msg);
  }
  if (const auto* logistic = dynamic_cast<const SoftmaxRegression*>(model.get());
      logistic && !logistic->converged())
    classifier.warning_ = fmt::format(
        "logistic regression stopped after {} iterations (--iterations) before converging; its "
        "weights are not the optimum",
        logistic->iterations());
  classifier.model_ = std::shared_ptr<cv::ml::StatModel>(model.get(), [model](auto*) {});
  return classifier;
}

std::vector<int64_t> ClassicalClassifier::predict(const torch::Tensor& features) const {
  cv::Mat samples = standardize(features);
  cv::Mat results;
  if (params_.algo == ClassicalAlgo::knn) {
    auto* knn = static_cast<cv::ml::KNearest*>(model_.get());
    knn->findNearest(samples, params_.k, results);
  } else {
    model_->predict(samples, results);
  }
  std::vector<int64_t> out(samples.rows);
  for (int i = 0; i < samples.rows; ++i) {
    out[i] = results.type() == CV_32S ? results.at<int>(i)
                                      : static_cast<int64_t>(std::lround(results.at<float>(i)));
  }
  return out;
}

void ClassicalClassifier::save(const fs::path& dir, const json& extra) const {
  fs::create_directories(dir);
  // OpenCV picks the format from the extension, so the temporary name keeps ".yml".
  const fs::path tmp = dir / fmt::format("classifier.tmp-{}.yml", ::getpid());
  try {
    model_->save(tmp.string());
  } catch (const cv::Exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    fail("cannot write {}: {}", (dir / "classifier.yml").string(), e.msg);
  }
  commit_file(tmp, dir / "classifier.yml");
  json description = extra;
  description["format"] = "vtl-classifier";
  description["version"] = 1;
  description["algo"] = to_string(params_.algo);
  description["params"] = to_json(params_);
  description["num_classes"] = num_classes_;
  description["mean"] = tensor_values(mean_);
  description["std"] = tensor_values(std_);
  write_file_atomically(dir / "classifier.json", description.dump(2) + "\n");
}

ClassicalClassifier ClassicalClassifier::load(const fs::path& dir, json* json_out) {
  const fs::path json_path = dir / "classifier.json", model_path = dir / "classifier.yml";
  VTL_CHECK(fs::exists(json_path), "{} is not a classifier folder: classifier.json is missing",
            dir.string());
  VTL_CHECK(fs::exists(model_path), "classifier folder {} is incomplete: classifier.yml is missing",
            dir.string());
  const json description = parse_json_document(read_file(json_path), json_path.string());
  VTL_CHECK(description.is_object() && description.value("format", json()) == "vtl-classifier",
            "{} is not a vtl classifier", json_path.string());
  ClassicalClassifier classifier;
  try {
    classifier.params_ = classical_params_from_json(description.at("params"));
    classifier.num_classes_ = description.at("num_classes").get<int64_t>();
    classifier.mean_ = torch::tensor(description.at("mean").get<std::vector<float>>());
    classifier.std_ = torch::tensor(description.at("std").get<std::vector<float>>());
  } catch (const json::exception& e) {
    fail("{}: malformed classifier description: {}", json_path.string(), e.what());
  }
  cv::Ptr<cv::ml::StatModel> model;
  try {
    const std::string file = model_path.string();
    switch (classifier.params_.algo) {
      case ClassicalAlgo::svm_linear:
      case ClassicalAlgo::svm_rbf:
        model = cv::ml::SVM::load(file);
        break;
      case ClassicalAlgo::random_forest:
        model = cv::ml::RTrees::load(file);
        break;
      case ClassicalAlgo::knn:
        model = cv::Algorithm::load<cv::ml::KNearest>(file);
        break;
      case ClassicalAlgo::logreg: {
        // Written by SoftmaxRegression; earlier versions wrote OpenCV's own model.
        cv::FileStorage fs(file, cv::FileStorage::READ);
        const cv::FileNode node = fs.getFirstTopLevelNode();
        if (node.name() == "opencv_ml_lr") {
          model = cv::ml::LogisticRegression::load(file);
        } else {
          auto logistic = cv::makePtr<SoftmaxRegression>(1.0, 1, classifier.num_classes_);
          logistic->read(node);
          model = logistic;
        }
        break;
      }
    }
  } catch (const cv::Exception& e) {
    fail("{}: cannot read the classifier: {}", model_path.string(), e.msg);
  }
  VTL_CHECK(model && model->isTrained(), "{}: cannot read the classifier", model_path.string());
  classifier.model_ = std::shared_ptr<cv::ml::StatModel>(model.get(), [model](auto*) {});
  if (json_out) *json_out = std::move(description);
  return classifier;
}

json Evaluation::to_json(const std::vector<std::string>& classes) const {
  return {{"accuracy", accuracy}, {"classes", classes}, {"confusion", confusion}};
}

Evaluation evaluate_predictions(const std::vector<int64_t>& predicted,
                                const std::vector<int64_t>& labels, int64_t num_classes) {
  VTL_CHECK(predicted.size() == labels.size(), "predictions and labels differ in length");
  Evaluation e;
  e.confusion.assign(num_classes, std::vector<int64_t>(num_classes, 0));
  int64_t correct = 0, counted = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) continue;
    ++counted;
    correct += predicted[i] == labels[i];
    if (labels[i] < num_classes && predicted[i] >= 0 && predicted[i] < num_classes)
      ++e.confusion[labels[i]][predicted[i]];
  }
  VTL_CHECK(counted > 0, "no labelled rows to evaluate");
  e.accuracy = static_cast<double>(correct) / counted;
  return e;
}

json CrossValidation::to_json() const {
  return {{"folds", folds},
          {"fold_accuracy", fold_accuracy},
          {"mean_accuracy", mean_accuracy},
          {"std_accuracy", std_accuracy}};
}

CrossValidation cross_validate(const torch::Tensor& features, const std::vector<int64_t>& labels,
                               int64_t num_classes, const ClassicalParams& params, int folds,
                               uint64_t seed) {
  VTL_CHECK(folds >= 2, "cross-validation needs at least 2 folds, got {}", folds);
  VTL_CHECK(static_cast<int64_t>(labels.size()) >= folds,
            "{} rows are too few for {}-fold cross-validation", labels.size(), folds);
  std::vector<int> fold_of(labels.size());
  std::mt19937_64 rng(seed);
  std::vector<std::vector<size_t>> by_class(num_classes);
  for (size_t i = 0; i < labels.size(); ++i) by_class.at(labels[i]).push_back(i);
  int next = 0;
  for (auto& rows : by_class) {
    std::shuffle(rows.begin(), rows.end(), rng);
    for (size_t row : rows) fold_of[row] = next++ % folds;
  }
  CrossValidation cv;
  cv.folds = folds;
  for (int f = 0; f < folds; ++f) {
    std::vector<int64_t> train_rows, test_rows, train_labels, test_labels;
    for (size_t i = 0; i < labels.size(); ++i) {
      (fold_of[i] == f ? test_rows : train_rows).push_back(static_cast<int64_t>(i));
      (fold_of[i] == f ? test_labels : train_labels).push_back(labels[i]);
    }
    auto train = features.index_select(0, torch::tensor(train_rows, torch::kLong));
    auto test = features.index_select(0, torch::tensor(test_rows, torch::kLong));
    auto model = ClassicalClassifier::fit(train, train_labels, num_classes, params);
    cv.fold_accuracy.push_back(
        evaluate_predictions(model.predict(test), test_labels, num_classes).accuracy);
  }
  cv.mean_accuracy = std::accumulate(cv.fold_accuracy.begin(), cv.fold_accuracy.end(), 0.0) / folds;
  double variance = 0;
  for (double a : cv.fold_accuracy) variance += (a - cv.mean_accuracy) * (a - cv.mean_accuracy);
  cv.std_accuracy = std::sqrt(variance / folds);
  return cv;
}

}  // namespace vtl::embed
